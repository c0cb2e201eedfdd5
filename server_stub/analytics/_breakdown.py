"""Breakdowns: where failures concentrate, one dimension at a time or two crossed.

For each value of a dimension: its failures and calls in the window, their shares of
the totals, the lift (failure share ÷ call share) and whether it is a suspect
(`SuspectRule`). A failure share alone misleads — the most used OS version always
has the most failures — so the calls (successes and failures) are the denominator:
a value with 80 % of the failures and 10 % of the calls has a lift of 8.
Sums come from the rollups (`_spans`: whole days from the daily table), never from
the raw events.

``error_code`` and ``category`` describe the failure itself: their values split the
failures, while every success has none (``null``). A code's "call share" is then its
own failures, and any code would look like a suspect; their lift is therefore
``null`` and they are never suspects (their failures and shares are still given).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server_stub.store import RollupGroup, RollupSpan, Store, rfc3339

from ._query import DIMENSIONS, BreakdownQuery, SuspectRule
from ._spans import MINUTE, spans
from ._window import Window

__all__ = ["breakdown"]

Key = tuple[str | None, ...]
#: dimensions that only failures have: no lift, no suspects (see the module docstring)
FAILURE_DIMENSIONS = frozenset({"error_code", "category"})


def _sums(
    store: Store, query: BreakdownQuery, window: Window, column_sets: list[tuple[str, ...]]
) -> list[list[RollupGroup]]:
    """Per column set, its groups over the window (every span summed, one snapshot)."""
    return store.rollup_groups(
        spans=[
            RollupSpan(span.grain, span.window.since, span.window.until) for span in spans(window)
        ],
        column_sets=column_sets,
        endpoint=query.endpoint,
        error_code=query.error_code,
    )


def _order(item: tuple[str | None, int, int]) -> tuple[int, int, bool, str]:
    value, failures, calls = item
    return (-failures, -calls, value is None, value or "")


def _shares(
    failures: int,
    calls: int,
    total_failures: int,
    total_calls: int,
    rule: SuspectRule,
    *,
    comparable: bool,
) -> dict[str, Any]:
    """Shares, lift and the suspect flag; ``comparable``: failures and calls share the
    dimension (not a `FAILURE_DIMENSIONS` one), so a lift means something."""
    failure_share = failures / total_failures if total_failures else 0.0
    call_share = calls / total_calls if total_calls else 0.0
    lift = failure_share / call_share if call_share and comparable else None
    return {
        "failures": failures,
        "failure_share": failure_share,
        "calls": calls,
        "call_share": call_share,
        "lift": lift,
        "suspect": rule.flags(failures, failure_share, lift),
    }


def _one(
    query: BreakdownQuery, window: Window, dimension: str, groups: list[RollupGroup]
) -> dict[str, Any]:
    total_calls = sum(group.calls for group in groups)
    total_failures = sum(group.failures for group in groups)
    groups.sort(key=lambda group: _order((group.values[0], group.failures, group.calls)))
    shown, rest = groups[: query.top], groups[query.top :]
    values = []
    for group in shown:
        entry = _shares(
            group.failures,
            group.calls,
            total_failures,
            total_calls,
            query.rule,
            comparable=dimension not in FAILURE_DIMENSIONS,
        )
        suspect = entry.pop("suspect")
        values.append(
            {
                "value": group.values[0],
                **entry,
                "first_seen": rfc3339(group.first_seen),
                "last_seen": rfc3339(group.last_seen),
                "suspect": suspect,
            }
        )
    return {
        "dimension": dimension,
        "since": rfc3339(window.since),
        "until": rfc3339(window.until),
        "total_failures": total_failures,
        "total_calls": total_calls,
        "values": values,
        "other": {
            "failures": sum(group.failures for group in rest),
            "calls": sum(group.calls for group in rest),
            "values": len(rest),
        },
    }


def _top(totals: Iterable[tuple[str | None, int, int]], top: int) -> list[str | None]:
    return [value for value, _, _ in sorted(totals, key=_order)[:top]]


def _totals(groups: Iterable[RollupGroup], index: int) -> dict[str | None, list[int]]:
    totals: dict[str | None, list[int]] = {}
    for group in groups:
        counted = totals.setdefault(group.values[index], [0, 0])
        counted[0] += group.failures
        counted[1] += group.calls
    return totals


def _cross(
    store: Store, query: BreakdownQuery, window: Window, dimension: str, by: str
) -> dict[str, Any]:
    (found,) = _sums(store, query, window, [(dimension, by)])
    cells = {cell.values: cell for cell in found}
    total_calls = sum(group.calls for group in cells.values())
    total_failures = sum(group.failures for group in cells.values())
    row_totals = _totals(cells.values(), 0)
    column_totals = _totals(cells.values(), 1)
    rows = _top(((v, f, c) for v, (f, c) in row_totals.items()), query.top)
    columns = _top(((v, f, c) for v, (f, c) in column_totals.items()), query.top)
    comparable = not {dimension, by} & FAILURE_DIMENSIONS
    table = []
    for row in rows:
        failures, calls = row_totals[row]
        cells_of_row = []
        for column in columns:
            cell = cells.get((row, column))
            cell_failures, cell_calls = (0, 0) if cell is None else (cell.failures, cell.calls)
            cells_of_row.append(
                {
                    "value": column,
                    **_shares(
                        cell_failures,
                        cell_calls,
                        total_failures,
                        total_calls,
                        query.rule,
                        comparable=comparable,
                    ),
                }
            )
        table.append({"value": row, "failures": failures, "calls": calls, "columns": cells_of_row})
    return {
        "dimension": dimension,
        "by": by,
        "since": rfc3339(window.since),
        "until": rfc3339(window.until),
        "total_failures": total_failures,
        "total_calls": total_calls,
        "rows": table,
    }


def breakdown(store: Store, query: BreakdownQuery) -> dict[str, Any] | list[dict[str, Any]]:
    """The breakdown report (docs/analytics.md): one object, or one per dimension."""
    window = query.window.aligned(MINUTE)
    if query.dimension is not None and query.by is not None:
        return _cross(store, query, window, query.dimension, query.by)
    dimensions = DIMENSIONS if query.dimension is None else (query.dimension,)
    found = _sums(store, query, window, [(dimension,) for dimension in dimensions])
    reports = [
        _one(query, window, dimension, groups)
        for dimension, groups in zip(dimensions, found, strict=True)
    ]
    return reports if query.dimension is None else reports[0]
