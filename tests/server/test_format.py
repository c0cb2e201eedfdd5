"""The server's table of Intl forms (server_stub/frontend/_format.py).

These pin a few forms by hand; `tests/server/test_widget.py` holds every table row to
what Chromium's ``Intl`` writes.
"""

from __future__ import annotations

import datetime as dt

import pytest

from server_stub.frontend._format import format_amount, format_datetime, format_number


@pytest.mark.parametrize(
    ("amount", "unit", "lang", "expected"),
    [
        (2, "USD", "en", "$2.00"),
        (2, "USD", "zh-CN", "US$2.00"),
        (2, "CNY", "zh-CN", "¥2.00"),
        (2, "CNY", "en", "CN¥2.00"),
        (1234.5, "EUR", "en", "€1,234.50"),
        (2.5, "JPY", "en", "¥3"),  # no minor unit; half rounds away from zero, like Intl
        (2, "CHF", "en", "CHF\u00a02.00"),  # no symbol in the table: the code, as CLDR
        (1000, "points", "zh-CN", "1,000"),
        (30, "days", "en", "30"),
        (5, '"><b>', "en", '5 "><b>'),  # an odd unit stays plain text (escaped later)
    ],
)
def test_amounts(amount: float, unit: str, lang: str, expected: str) -> None:
    assert format_amount(amount, unit, lang) == expected


def test_numbers_round_half_away_from_zero() -> None:
    assert format_number(0.125, 2) == "0.13"
    assert format_number(1_000_000) == "1,000,000"


def test_dates_are_utc_with_the_zone_shown() -> None:
    at = dt.datetime(2026, 12, 8, 23, 4, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert format_datetime(at, "en") == "Dec 8, 2026, 3:04 PM UTC"
    assert format_datetime(at, "zh-CN") == "2026年12月8日 UTC 15:04"
    midnight = dt.datetime(2030, 1, 8, 0, 0, tzinfo=dt.UTC)
    assert format_datetime(midnight, "en") == "Jan 8, 2030, 12:00 AM UTC"
