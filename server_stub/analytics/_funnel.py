"""The compensation funnel: vouchers issued → shown → redeemed → reversed, and their cost.

`compensation(store, query)` answers ``GET /v1/reports/compensation`` (docs/analytics.md,
"Compensation funnel"). The vouchers are those issued in ``[since, until)``; ``shown``
counts those whose alert was fetched (``shown_at``), ``redeemed`` and ``reversed`` their
redemptions whenever they happened. The store aggregates per UTC day and dimension in
SQL; this module folds days into weeks (ISO, from Monday) and months, and store amounts
(cents for currencies) into the units a token states (``USD``, ``points``, ``days``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from server_stub.domain._render import rfc3339
from server_stub.store import Budget, FunnelRow, Store, wire_amount

from ._window import InvalidReportQuery, Window, check_names, parse_choice

__all__ = ["GROUP_BY", "PERIODS", "CompensationQuery", "check_era", "compensation"]

#: what the funnel can be grouped by, and the period lengths of ``group_by=period``
GROUP_BY: tuple[str, ...] = ("period", "error_code", "grade", "segment")
PERIODS: tuple[str, ...] = ("day", "week", "month")
_PARAMS = frozenset({"since", "until", "group_by", "period"})
_STAGES = ("issued", "shown", "redeemed", "reversed")
#: the kind-wide budget's campaign in the store; null in the report
_ANY_CAMPAIGN = "*"


#: report times stay in these years: date arithmetic on them (a month or 365 days
#: later) can never leave Python's datetime range
_ERA = (datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))


def check_era(window: Window) -> Window:
    """The window, if it lies within 1970-2999 (UTC).

    Raises:
        InvalidReportQuery: it does not.
    """
    if window.since < _ERA[0] or window.until >= _ERA[1]:
        raise InvalidReportQuery("since and until must be in the years 1970 to 2999.")
    return window


@attrs.frozen
class CompensationQuery:
    """``GET /v1/reports/compensation``'s parsed query."""

    window: Window
    group_by: str = "period"
    period: str = "day"

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: datetime) -> CompensationQuery:
        """Parse single-valued query parameters.

        Raises:
            InvalidReportQuery: an unknown name, a bad value or window.
        """
        check_names(params, _PARAMS)
        window = check_era(Window.from_params(params, now))
        group_by = parse_choice(params, "group_by", GROUP_BY, "period")
        assert group_by is not None
        if "period" in params and group_by != "period":
            raise InvalidReportQuery("period applies only with group_by=period.")
        period = parse_choice(params, "period", PERIODS, "day")
        assert period is not None
        return cls(window=window, group_by=group_by, period=period)


def _period_start(day: datetime, period: str) -> datetime:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_period(start: datetime, period: str) -> datetime:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _period_key(start: datetime, period: str) -> str:
    return start.strftime("%Y-%m") if period == "month" else start.strftime("%Y-%m-%d")


def _periods(window: Window, period: str) -> list[str]:
    """Every period key touching the window, oldest first (empty periods included)."""
    first = window.since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = _period_start(first, period)
    keys: list[str] = []
    while start < window.until:
        keys.append(_period_key(start, period))
        start = _next_period(start, period)
    return keys


def _key(row: FunnelRow, query: CompensationQuery) -> str | None:
    if query.group_by == "period":
        return _period_key(_period_start(row.day, query.period), query.period)
    if query.group_by == "error_code":
        return row.error_code
    if query.group_by == "grade":
        return row.severity
    return row.segment


class _Tally:
    """Counts and per-unit store amounts of one group."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_STAGES, 0)
        self.amounts: dict[str, list[int]] = {}

    def add(self, row: FunnelRow) -> None:
        for stage in _STAGES:
            self.counts[stage] += getattr(row, stage)
        amounts = self.amounts.setdefault(row.unit, [0, 0])
        amounts[0] += row.issued_amount
        amounts[1] += row.redeemed_amount

    def cost(self) -> list[dict[str, Any]]:
        by_unit: dict[str, dict[str, Any]] = {}
        for unit, (issued, redeemed) in self.amounts.items():
            issued_value, wire_unit = wire_amount(issued, unit)
            redeemed_value, _ = wire_amount(redeemed, unit)
            by_unit[wire_unit] = {
                "unit": wire_unit,
                "issued": issued_value,
                "redeemed": redeemed_value,
            }
        return [by_unit[unit] for unit in sorted(by_unit)]

    def to_json(self) -> dict[str, Any]:
        return {**self.counts, "cost": self.cost()}


def _budget_json(budget: Budget) -> dict[str, Any]:
    limit, unit = wire_amount(budget.total, budget.unit)
    spent, _ = wire_amount(budget.total - budget.remaining, budget.unit)
    remaining, _ = wire_amount(budget.remaining, budget.unit)
    return {
        "kind": budget.kind,
        "campaign": None if budget.campaign == _ANY_CAMPAIGN else budget.campaign,
        "unit": unit,
        "limit": limit,
        "spent": spent,
        "remaining": remaining,
    }


def _null_last(key: str | None) -> tuple[bool, str]:
    return key is None, key or ""


def _ordered_groups(
    tallies: dict[str | None, _Tally], query: CompensationQuery
) -> Iterable[tuple[str | None, _Tally]]:
    if query.group_by == "period":
        for key in _periods(query.window, query.period):
            yield key, tallies.get(key) or _Tally()
        return
    # Most vouchers first; the unknown (null) group last among equals.
    yield from sorted(
        tallies.items(),
        key=lambda item: (-item[1].counts["issued"], item[0] is None, item[0] or ""),
    )


def compensation(store: Store, query: CompensationQuery) -> dict[str, Any]:
    """The funnel report (the JSON of ``GET /v1/reports/compensation``)."""
    rows = store.funnel_rows(query.window.since, query.window.until)
    total = _Tally()
    tallies: dict[str | None, _Tally] = {}
    for row in rows:
        total.add(row)
        tallies.setdefault(_key(row, query), _Tally()).add(row)
    return {
        "since": rfc3339(query.window.since),
        "until": rfc3339(query.window.until),
        "group_by": query.group_by,
        "totals": total.to_json(),
        "groups": [
            {"key": key, **tally.to_json()} for key, tally in _ordered_groups(tallies, query)
        ],
        "budgets": [
            _budget_json(budget)
            for budget in sorted(store.budgets(), key=lambda b: (b.kind, b.campaign))
        ],
    }
