import email.utils

import pytest

from errdiscount_sdk import cap_retry_after, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (b"3", 3.0),
        ("0", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("9" * 100, None),
        (b"\xff\xfe", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: not an HTTP-date
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
        ("٣", None),  # a non-ASCII digit
    ],
)
def test_parse_retry_after(value: object, expected: float | None) -> None:
    result = parse_retry_after(value, now=NOW)  # type: ignore[arg-type]
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize(
    ("seconds", "maximum", "expected"),
    [(None, 10, None), (5.0, 10, 5.0), (50.0, 10, 10), (-1.0, 10, 0.0)],
)
def test_cap_retry_after(seconds: float | None, maximum: float, expected: float | None) -> None:
    assert cap_retry_after(seconds, maximum) == expected
