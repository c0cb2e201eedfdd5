"""The report JSON of the server's ``/v1/reports/*`` (docs/analytics.md), as checked values.

`parse_breakdowns`, `parse_timeseries`, `parse_compensation` and `parse_outcomes` turn the
decoded JSON into frozen values or raise `InvalidReport` naming the first bad member. They
trust nothing: every count is a non-negative whole number (never a bool), every share a
finite number in 0..1, every text a string of bounded length, every list bounded
(`MAX_VALUES`, `MAX_POINTS`, ...), so a hostile or broken server cannot make the renderers
draw without end. Unknown members are ignored (a newer server may add some).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._model.wire import MAX_REPORT_POINTS, MAX_REPORT_TOP, REPORT_DIMENSIONS
from .errors import InvalidReport

__all__ = [
    "DIMENSIONS",
    "MAX_DIMENSIONS",
    "MAX_GROUPS",
    "MAX_INCIDENTS",
    "MAX_POINTS",
    "MAX_TEXT",
    "MAX_VALUES",
    "STEPS",
    "Breakdown",
    "BreakdownValue",
    "Budget",
    "CompensationReport",
    "Cost",
    "CrossTab",
    "CrossTabRow",
    "Funnel",
    "FunnelGroup",
    "Incident",
    "OutcomeGroup",
    "OutcomesReport",
    "TimePoint",
    "Timeseries",
    "parse_breakdowns",
    "parse_compensation",
    "parse_crosstab",
    "parse_outcomes",
    "parse_time",
    "parse_timeseries",
]

DIMENSIONS = REPORT_DIMENSIONS
"""The breakdown dimensions, in the order the server lists them."""

MAX_TEXT = 1024
"""The longest text accepted in a report (a value, a key, a note)."""
MAX_VALUES = MAX_REPORT_TOP
"""Values per breakdown (the server's ``top`` is at most 100); rows and columns of a cross-tab."""
MAX_DIMENSIONS = 16
MAX_POINTS = MAX_REPORT_POINTS
"""Points of a time series (the server's own cap)."""
MAX_INCIDENTS = 1000
MAX_GROUPS = 1000
"""Groups of the compensation funnel, budgets, cost units and outcome groups."""
_MAX_COUNT = 2**63 - 1
_SHARE_SLACK = 1e-9  # rounding of a share computed as a ratio of two counts

T = TypeVar("T")


def _member(document: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in document:
        raise InvalidReport(f"{where}: {name} is missing")
    return document[name]


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidReport(f"{where} must be an object")
    return value


def _list(value: Any, where: str, cap: int) -> Sequence[Any]:
    if not isinstance(value, list):
        raise InvalidReport(f"{where} must be a list")
    if len(value) > cap:
        raise InvalidReport(f"{where} has more than {cap} items")
    return value


def _count(document: Mapping[str, Any], name: str, where: str) -> int:
    value = _member(document, name, where)
    if type(value) is not int or not 0 <= value <= _MAX_COUNT:
        raise InvalidReport(f"{where}: {name} must be a whole number >= 0")
    return value


def _number(document: Mapping[str, Any], name: str, where: str) -> float:
    value = _member(document, name, where)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InvalidReport(f"{where}: {name} must be a finite number")
    return float(value)


def _optional_number(document: Mapping[str, Any], name: str, where: str) -> float | None:
    if document.get(name) is None:
        return None
    value = _number(document, name, where)
    if value < 0:
        raise InvalidReport(f"{where}: {name} must be >= 0")
    return value


def _share(document: Mapping[str, Any], name: str, where: str, *, optional: bool = False) -> Any:
    if optional and document.get(name) is None:
        return None
    value = _number(document, name, where)
    if not -_SHARE_SLACK <= value <= 1 + _SHARE_SLACK:
        raise InvalidReport(f"{where}: {name} must be from 0 to 1")
    return min(1.0, max(0.0, value))


def _text(document: Mapping[str, Any], name: str, where: str, *, optional: bool = False) -> Any:
    value = document.get(name) if optional else _member(document, name, where)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidReport(f"{where}: {name} must be a string of at most {MAX_TEXT} characters")
    return value


def _value(document: Mapping[str, Any], name: str, where: str) -> str | None:
    """A dimension value or group key: text, or null ("unknown")."""
    value = _member(document, name, where)
    if value is None:
        return None
    if type(value) in (int, float, bool):  # a key the server wrote as a number
        return str(value).lower() if type(value) is bool else str(value)
    result: str = _text(document, name, where)
    return result


def parse_time(text: str, where: str = "time") -> dt.datetime:
    """An RFC 3339 timestamp with a zone, as an aware UTC datetime.

    Raises:
        InvalidReport: not such a timestamp.
    """
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReport(f"{where} must be an RFC 3339 time") from None
    if value.tzinfo is None:
        raise InvalidReport(f"{where} must be an RFC 3339 time with a zone")
    return value.astimezone(dt.UTC)


def _time(document: Mapping[str, Any], name: str, where: str, *, optional: bool = False) -> Any:
    text = _text(document, name, where, optional=optional)
    if text is None:
        return None
    return parse_time(text, f"{where}: {name}")


def _items(
    document: Mapping[str, Any], name: str, where: str, cap: int, parse: Callable[[Any, str], T]
) -> tuple[T, ...]:
    items = _list(_member(document, name, where), f"{where}: {name}", cap)
    return tuple(parse(item, f"{where}: {name}[{index}]") for index, item in enumerate(items))


def _bool(document: Mapping[str, Any], name: str, where: str) -> bool:
    value = _member(document, name, where)
    if type(value) is not bool:
        raise InvalidReport(f"{where}: {name} must be true or false")
    return value


@attrs.frozen
class BreakdownValue:
    """One value of a dimension: its failures and calls, their shares, the lift, the verdict.

    ``value`` None is "unknown" (events that did not say). ``lift`` is failure share ÷ call
    share, None when the value had no calls.
    """

    value: str | None
    failures: int
    failure_share: float
    calls: int
    call_share: float
    lift: float | None
    suspect: bool
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None

    @classmethod
    def from_json(cls, document: Any, where: str = "value") -> BreakdownValue:
        item = _object(document, where)
        return cls(
            value=_value(item, "value", where),
            failures=_count(item, "failures", where),
            failure_share=_share(item, "failure_share", where),
            calls=_count(item, "calls", where),
            call_share=_share(item, "call_share", where),
            lift=_optional_number(item, "lift", where),
            suspect=_bool(item, "suspect", where),
            first_seen=_time(item, "first_seen", where, optional=True),
            last_seen=_time(item, "last_seen", where, optional=True),
        )


@attrs.frozen
class Breakdown:
    """Failures and calls of one dimension over a window, the top values first."""

    dimension: str
    since: dt.datetime
    until: dt.datetime
    total_failures: int
    total_calls: int
    values: tuple[BreakdownValue, ...]
    other_failures: int = 0
    other_calls: int = 0
    other_values: int = 0

    @property
    def suspects(self) -> tuple[BreakdownValue, ...]:
        """The values flagged as suspects (failures concentrate there beyond their calls)."""
        return tuple(v for v in self.values if v.suspect)

    @classmethod
    def from_json(cls, document: Any, where: str = "breakdown") -> Breakdown:
        item = _object(document, where)
        other = _object(item.get("other") or {}, f"{where}: other")
        return cls(
            dimension=_text(item, "dimension", where),
            since=_time(item, "since", where),
            until=_time(item, "until", where),
            total_failures=_count(item, "total_failures", where),
            total_calls=_count(item, "total_calls", where),
            values=_items(item, "values", where, MAX_VALUES, BreakdownValue.from_json),
            other_failures=_count(other, "failures", f"{where}: other") if other else 0,
            other_calls=_count(other, "calls", f"{where}: other") if other else 0,
            other_values=_count(other, "values", f"{where}: other") if other else 0,
        )


def parse_breakdowns(document: Any) -> tuple[Breakdown, ...]:
    """``GET /v1/reports/breakdown`` without ``by``: one object, or a list of them.

    Raises:
        InvalidReport: not a breakdown report.
    """
    if isinstance(document, list):
        items = _list(document, "breakdowns", MAX_DIMENSIONS)
        return tuple(Breakdown.from_json(d, f"breakdowns[{i}]") for i, d in enumerate(items))
    return (Breakdown.from_json(document),)


@attrs.frozen
class CrossTabRow:
    """One value of the first dimension, with its cells across the second (``by``)."""

    value: str | None
    failures: int
    calls: int
    columns: tuple[BreakdownValue, ...]

    @classmethod
    def from_json(cls, document: Any, where: str = "row") -> CrossTabRow:
        item = _object(document, where)

        def cell(value: Any, at: str) -> BreakdownValue:
            return BreakdownValue.from_json(value, at)

        return cls(
            value=_value(item, "value", where),
            failures=_count(item, "failures", where),
            calls=_count(item, "calls", where),
            columns=_items(item, "columns", where, MAX_VALUES, cell),
        )


@attrs.frozen
class CrossTab:
    """Two dimensions crossed (``dimension`` by ``by``); shares relative to the totals."""

    dimension: str
    by: str
    since: dt.datetime
    until: dt.datetime
    total_failures: int
    total_calls: int
    rows: tuple[CrossTabRow, ...]


def parse_crosstab(document: Any) -> CrossTab:
    """``GET /v1/reports/breakdown?by=...``.

    Raises:
        InvalidReport: not a cross-tab report.
    """
    where = "crosstab"
    item = _object(document, where)
    return CrossTab(
        dimension=_text(item, "dimension", where),
        by=_text(item, "by", where),
        since=_time(item, "since", where),
        until=_time(item, "until", where),
        total_failures=_count(item, "total_failures", where),
        total_calls=_count(item, "total_calls", where),
        rows=_items(item, "rows", where, MAX_VALUES, CrossTabRow.from_json),
    )


@attrs.frozen
class TimePoint:
    start: dt.datetime
    calls: int
    failures: int

    @classmethod
    def from_json(cls, document: Any, where: str = "point") -> TimePoint:
        item = _object(document, where)
        return cls(
            start=_time(item, "start", where),
            calls=_count(item, "calls", where),
            failures=_count(item, "failures", where),
        )


@attrs.frozen
class Incident:
    """An incident the detector opened; ``end`` None while it is still open."""

    id: str
    endpoint: str | None
    start: dt.datetime
    end: dt.datetime | None
    severity: str | None

    @classmethod
    def from_json(cls, document: Any, where: str = "incident") -> Incident:
        item = _object(document, where)
        return cls(
            id=_text(item, "id", where),
            endpoint=_text(item, "endpoint", where, optional=True),
            start=_time(item, "start", where),
            end=_time(item, "end", where, optional=True),
            severity=_text(item, "severity", where, optional=True),
        )


STEPS = {
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
}


@attrs.frozen
class Timeseries:
    """Calls and failures per step over the window, and the incidents overlapping it."""

    since: dt.datetime
    until: dt.datetime
    step: str
    points: tuple[TimePoint, ...]
    incidents: tuple[Incident, ...]

    @property
    def step_length(self) -> dt.timedelta:
        return STEPS[self.step]


def parse_timeseries(document: Any) -> Timeseries:
    """``GET /v1/reports/timeseries``.

    Raises:
        InvalidReport: not a time-series report.
    """
    where = "timeseries"
    item = _object(document, where)
    step = _text(item, "step", where)
    if step not in STEPS:
        raise InvalidReport(f"{where}: step must be one of {', '.join(STEPS)}")
    return Timeseries(
        since=_time(item, "since", where),
        until=_time(item, "until", where),
        step=step,
        points=_items(item, "points", where, MAX_POINTS, TimePoint.from_json),
        incidents=_items(item, "incidents", where, MAX_INCIDENTS, Incident.from_json),
    )


@attrs.frozen
class Cost:
    """What the vouchers were worth in one unit (a currency code, ``points``, ``days``...)."""

    unit: str
    issued: float
    redeemed: float

    @classmethod
    def from_json(cls, document: Any, where: str = "cost") -> Cost:
        item = _object(document, where)
        issued = _optional_number(item, "issued", where)
        redeemed = _optional_number(item, "redeemed", where)
        return cls(_text(item, "unit", where), issued or 0.0, redeemed or 0.0)


@attrs.frozen
class Funnel:
    """Vouchers issued → alert shown → redeemed → reversed, and their cost per unit."""

    issued: int
    shown: int
    redeemed: int
    reversed: int
    cost: tuple[Cost, ...] = ()

    @classmethod
    def from_json(cls, document: Any, where: str = "funnel") -> Funnel:
        item = _object(document, where)
        cost = _items(item, "cost", where, MAX_GROUPS, Cost.from_json) if "cost" in item else ()
        return cls(
            issued=_count(item, "issued", where),
            shown=_count(item, "shown", where),
            redeemed=_count(item, "redeemed", where),
            reversed=_count(item, "reversed", where),
            cost=cost,
        )


@attrs.frozen
class FunnelGroup:
    """The funnel of one group (a period, an error code, a grade or a segment; None: unknown)."""

    key: str | None
    funnel: Funnel

    @classmethod
    def from_json(cls, document: Any, where: str = "group") -> FunnelGroup:
        item = _object(document, where)
        return cls(_value(item, "key", where), Funnel.from_json(item, where))


@attrs.frozen
class Budget:
    kind: str
    campaign: str | None
    unit: str
    limit: float
    spent: float
    remaining: float

    @classmethod
    def from_json(cls, document: Any, where: str = "budget") -> Budget:
        item = _object(document, where)
        return cls(
            kind=_text(item, "kind", where),
            campaign=_text(item, "campaign", where, optional=True),
            unit=_text(item, "unit", where),
            limit=_number(item, "limit", where),
            spent=_number(item, "spent", where),
            remaining=_number(item, "remaining", where),
        )


@attrs.frozen
class CompensationReport:
    since: dt.datetime
    until: dt.datetime
    group_by: str
    totals: Funnel
    groups: tuple[FunnelGroup, ...]
    budgets: tuple[Budget, ...]


def parse_compensation(document: Any) -> CompensationReport:
    """``GET /v1/reports/compensation``.

    Raises:
        InvalidReport: not a compensation report.
    """
    where = "compensation"
    item = _object(document, where)
    budgets = (
        _items(item, "budgets", where, MAX_GROUPS, Budget.from_json) if "budgets" in item else ()
    )
    return CompensationReport(
        since=_time(item, "since", where),
        until=_time(item, "until", where),
        group_by=_text(item, "group_by", where),
        totals=Funnel.from_json(_member(item, "totals", where), f"{where}: totals"),
        groups=_items(item, "groups", where, MAX_GROUPS, FunnelGroup.from_json),
        budgets=budgets,
    )


@attrs.frozen
class OutcomeGroup:
    """Users of one group and how many of them converted; the rate and its interval."""

    group: str
    users: int
    converted: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def from_json(cls, document: Any, where: str = "group") -> OutcomeGroup:
        item = _object(document, where)
        return cls(
            group=_text(item, "group", where),
            users=_count(item, "users", where),
            converted=_count(item, "converted", where),
            rate=_share(item, "rate", where, optional=True),
            ci_low=_share(item, "ci_low", where, optional=True),
            ci_high=_share(item, "ci_high", where, optional=True),
        )


@attrs.frozen
class OutcomesReport:
    since: dt.datetime
    until: dt.datetime
    name: str
    within_days: int
    confidence: float
    method: str
    groups: tuple[OutcomeGroup, ...]
    note: str


def parse_outcomes(document: Any) -> OutcomesReport:
    """``GET /v1/reports/outcomes``.

    Raises:
        InvalidReport: not an outcomes report.
    """
    where = "outcomes"
    item = _object(document, where)
    return OutcomesReport(
        since=_time(item, "since", where),
        until=_time(item, "until", where),
        name=_text(item, "name", where),
        within_days=_count(item, "within_days", where),
        confidence=_share(item, "confidence", where),
        method=_text(item, "method", where),
        groups=_items(item, "groups", where, MAX_GROUPS, OutcomeGroup.from_json),
        note=_text(item, "note", where, optional=True) or "",
    )
