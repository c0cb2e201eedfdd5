"""Query parsing shared by every report: the time window and the small value parsers.

Every report takes ``since`` and ``until``, each an RFC 3339 timestamp with a zone or a
relative age ``<n>m``, ``<n>h``, ``<n>d`` (now minus n minutes, hours, days). Defaults:
``until`` = now, ``since`` = ``until`` - 7 days; the window is at most 400 days and
``since`` must come before ``until``. Parameters arrive as one mapping of names to
single values (`single_values` refuses repeats); anything wrong raises
`InvalidReportQuery` with a message fit for a 400 problem, never a library exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import attrs

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_PARAM",
    "MAX_WINDOW",
    "InvalidReportQuery",
    "Window",
    "check_names",
    "parse_choice",
    "parse_float",
    "parse_int",
    "parse_moment",
    "single_values",
]

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=400)
#: characters of one query parameter value
MAX_PARAM = 256
#: a relative age: digits (at most 6) and a unit
_RELATIVE = re.compile(r"([0-9]{1,6})([mhd])")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
# RFC 3339 with a zone: "Z" or "±hh:mm" (fromisoformat alone would accept much more).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class InvalidReportQuery(ValueError):
    """A report's query parameters are wrong; the message says which and why (a 400)."""


def single_values(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Name → value of a query string's items; a repeated name is refused."""
    found: dict[str, str] = {}
    for name, value in items:
        if name in found:
            raise InvalidReportQuery(f"{name[:64]!r} may appear once.")
        found[name] = value
    return found


def check_names(params: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Refuse unknown names and values that are empty, too long or unprintable."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidReportQuery(f"Unknown query parameter {unknown[0][:64]!r}.")
    for name, value in params.items():
        if not 0 < len(value) <= MAX_PARAM or not value.isprintable():
            raise InvalidReportQuery(f"{name} must be 1 to {MAX_PARAM} printable characters.")


def parse_moment(value: str, name: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp with a zone, or a relative age before ``now``, in UTC."""
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        try:
            return now - int(relative.group(1)) * _UNITS[relative.group(2)]
        except OverflowError:
            raise InvalidReportQuery(f"{name} is too far in the past.") from None
    if _TIMESTAMP.fullmatch(value) is None:
        raise InvalidReportQuery(
            f"{name} must be an RFC 3339 timestamp with a zone or an age such as 7d, 12h, 30m."
        )
    text = value.upper().replace(" ", "T").replace("Z", "+00:00")
    fraction = re.search(r"\.([0-9]+)", text)
    if fraction is not None and len(fraction.group(1)) > 6:  # Python keeps microseconds
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6], 1)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidReportQuery(f"{name} is not a valid date and time.") from None


def parse_int(params: Mapping[str, str], name: str, *, low: int, high: int, default: int) -> int:
    """A decimal integer in ``low..high`` (``default`` when absent)."""
    value = params.get(name)
    if value is None:
        return default
    digits = value.isascii() and value.isdigit() and len(value) <= 9
    if not digits or not low <= int(value) <= high:
        raise InvalidReportQuery(f"{name} must be an integer from {low} to {high}.")
    return int(value)


def parse_float(
    params: Mapping[str, str], name: str, *, low: float, high: float, default: float
) -> float:
    """A finite decimal number in ``low..high`` (``default`` when absent)."""
    value = params.get(name)
    if value is None:
        return default
    # Plain decimal notation only: float() would also take " 1", "1_0", "inf".
    number = float(value) if _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidReportQuery(f"{name} must be a number from {low:g} to {high:g}.")
    return number


def parse_choice(
    params: Mapping[str, str], name: str, choices: Iterable[str], default: str | None
) -> str | None:
    """One of ``choices`` (``default`` when absent)."""
    value = params.get(name)
    if value is None:
        return default
    allowed = tuple(choices)
    if value not in allowed:
        raise InvalidReportQuery(f"{name} must be one of {', '.join(allowed)}.")
    return value


@attrs.frozen
class Window:
    """A report's half-open time window ``[since, until)``, in UTC."""

    since: datetime
    until: datetime

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: datetime) -> Window:
        """``since``/``until`` of ``params`` (other names are the caller's to check)."""
        now = now.astimezone(UTC)
        until = parse_moment(params["until"], "until", now) if "until" in params else now
        since = (
            parse_moment(params["since"], "since", now)
            if "since" in params
            else until - DEFAULT_WINDOW
        )
        if since < _EARLIEST or until > _LATEST:
            # Whole steps around the window must stay representable (and in the rollups).
            raise InvalidReportQuery("since and until must lie in the years 1970 to 9998.")
        if since >= until:
            raise InvalidReportQuery("since must be before until.")
        if until - since > MAX_WINDOW:
            raise InvalidReportQuery(f"The window is at most {MAX_WINDOW.days} days.")
        return cls(since=since, until=until)

    def aligned(self, step: timedelta) -> Window:
        """The smallest window of whole ``step``s (from the epoch, UTC) holding this one."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        start = epoch + (self.since - epoch) // step * step
        end = epoch + -((epoch - self.until) // step) * step
        return Window(since=start, until=end)
