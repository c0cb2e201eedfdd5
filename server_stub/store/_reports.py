"""Report reads over the rollups: grouped sums and time buckets (server_stub/analytics).

They read the per-minute rollups and the per-day ones (migration 9) over half-open
spans of their time columns; the analytics package chooses the table per span so that
whole days come from the small one. A grouped read sums all its spans in one statement
(``UNION ALL`` under one ``GROUP BY``), and all its column sets in one transaction: the
totals of every dimension come from the same snapshot. Column names are checked against
`GROUP_COLUMNS` (never input); values are bound parameters. The SQL is plain
``SUM``/``MIN``/``MAX`` with ``GROUP BY``, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from errdiscount_sdk.wire import REPORT_DIMENSIONS

from ._base import Row, Tx, from_us, to_us
from ._errors import StoreInputError
from ._event_models import RollupGroup, RollupSpan, SeriesBucket

#: the columns a report may group by
GROUP_COLUMNS: tuple[str, ...] = REPORT_DIMENSIONS
#: grain → (table, time column)
GRAINS: dict[str, tuple[str, str]] = {
    "minute": ("event_rollups", "minute"),
    "day": ("event_rollups_daily", "day"),
}


def _source(grain: str) -> tuple[str, str]:
    found = GRAINS.get(grain)
    if found is None:
        raise StoreInputError(f"grain is one of {', '.join(GRAINS)}")
    return found


def _filters(
    column: str, since: int, until: int, endpoint: str | None, error_code: str | None
) -> tuple[str, str, dict[str, Any]]:
    """(WHERE clause, failures expression, parameters).

    ``error_code`` narrows the failures only: the calls stay every call of the group,
    the denominator a share needs.
    """
    where = f"{column} >= :since AND {column} < :until"
    params: dict[str, Any] = {"since": since, "until": until}
    if endpoint is not None:
        where += " AND endpoint = :endpoint"
        params["endpoint"] = endpoint
    failures = "failures"
    if error_code is not None:
        failures = "CASE WHEN error_code = :error_code THEN failures ELSE 0 END"
        params["error_code"] = error_code
    return where, failures, params


def _value(text: object) -> str | None:
    return None if text == "" or text is None else str(text)


def _span_rows(
    spans: Sequence[RollupSpan], columns: tuple[str, ...], failures: str, endpoint: str | None
) -> tuple[str, dict[str, Any]]:
    """One SELECT per span, UNION ALL: the rows of every span (they never overlap)."""
    parts = []
    params: dict[str, Any] = {}
    keys = "".join(f"{column} AS k{index}, " for index, column in enumerate(columns))
    for number, span in enumerate(spans):
        table, time_column = _source(span.grain)
        where = f"{time_column} >= :since{number} AND {time_column} < :until{number}"
        if endpoint is not None:
            where += " AND endpoint = :endpoint"
        params[f"since{number}"] = to_us(span.since)
        params[f"until{number}"] = to_us(span.until)
        parts.append(
            f"SELECT {keys}calls, {failures} AS failures, first_seen, last_seen"  # noqa: S608
            f" FROM {table} WHERE {where}"
        )
    return " UNION ALL ".join(parts), params


def groups(
    tx: Tx,
    *,
    spans: Sequence[RollupSpan],
    column_sets: Sequence[tuple[str, ...]],
    endpoint: str | None,
    error_code: str | None,
) -> list[list[RollupGroup]]:
    """Per column set, the sums per combination of its columns over all the spans."""
    if not spans:
        return [[] for _ in column_sets]
    found = []
    for columns in column_sets:
        if any(column not in GROUP_COLUMNS for column in columns) or len(set(columns)) != len(
            columns
        ):
            raise StoreInputError(f"group columns are distinct ones of {', '.join(GROUP_COLUMNS)}")
        failures = (
            "failures"
            if error_code is None
            else ("CASE WHEN error_code = :error_code THEN failures ELSE 0 END")
        )
        union, params = _span_rows(spans, columns, failures, endpoint)
        if endpoint is not None:
            params["endpoint"] = endpoint
        if error_code is not None:
            params["error_code"] = error_code
        keys = [f"k{index}" for index in range(len(columns))]
        group_by = f" GROUP BY {', '.join(keys)}" if keys else ""
        rows: list[Row] = tx.all(
            f"SELECT {''.join(key + ', ' for key in keys)}SUM(calls) AS calls,"  # noqa: S608
            " SUM(failures) AS failures, MIN(first_seen) AS first_seen,"
            f" MAX(last_seen) AS last_seen FROM ({union}) AS spans{group_by}",
            params,
        )
        found.append(
            [
                RollupGroup(
                    values=tuple(_value(row[key]) for key in keys),
                    calls=int(row["calls"]),
                    failures=int(row["failures"]),
                    first_seen=from_us(int(row["first_seen"])),
                    last_seen=from_us(int(row["last_seen"])),
                )
                for row in rows
                if row["calls"] is not None  # no GROUP BY over no rows: one row of NULLs
            ]
        )
    return found


def series(
    tx: Tx,
    *,
    grain: str,
    since: int,
    until: int,
    step: int,
    endpoint: str | None,
    error_code: str | None,
) -> list[SeriesBucket]:
    """Sums per ``step`` µs (buckets from the epoch) over ``[since, until)``, by time."""
    table, time_column = _source(grain)
    if step <= 0:
        raise StoreInputError("step must be a positive number of microseconds")
    where, failures, params = _filters(time_column, since, until, endpoint, error_code)
    # The step is an int (typed), written as a literal: a bound parameter would
    # leave its type to the driver in integer arithmetic.
    bucket = f"{time_column} - {time_column} % {step}"
    rows = tx.all(
        f"SELECT {bucket} AS bucket, SUM(calls) AS calls, SUM({failures}) AS failures"  # noqa: S608
        f" FROM {table} WHERE {where} GROUP BY {bucket} ORDER BY bucket",
        params,
    )
    return [
        SeriesBucket(
            start=from_us(int(row["bucket"])),
            calls=int(row["calls"]),
            failures=int(row["failures"]),
        )
        for row in rows
    ]
