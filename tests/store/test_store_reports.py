"""Report reads on both back ends: daily rollups kept by ingest and pruned, and reports
over a window with ragged edges equal to a GROUP BY over the raw events."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server_stub.analytics import (
    DIMENSIONS,
    BreakdownQuery,
    TimeseriesQuery,
    Window,
    breakdown,
    timeseries,
)
from server_stub.analytics._spans import spans
from server_stub.store import (
    GROUP_COLUMNS,
    EventRecord,
    IncidentRecord,
    RollupGroup,
    RollupSpan,
    Store,
    StoreInputError,
    rfc3339,
)
from tests.conftest import FakeClock

DAY = timedelta(days=1)
START = datetime(2029, 12, 20, 21, 47, 13, tzinfo=UTC)
ALL_TIME = (datetime(2029, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
CHOICES: dict[str, tuple[str | None, ...]] = {
    "platform": ("ios", "android", None),
    "os_version": ("17.2", "17.4", "14", None),
    "app_version": ("5.0.0", "5.1.0"),
    "sdk_version": ("0.4.0", None),
    "endpoint": ("POST /pay", "GET /cart", "POST /msg"),
    "error_code": ("E_DOWN", "E_SLOW", "E_AUTH"),
}


def generated(
    count: int, seed: int, span: timedelta = timedelta(days=3, hours=7)
) -> list[EventRecord]:
    """Random calls over ``span`` from `START`, successes and failures, with counts."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        failed = rng.random() < 0.3
        code = rng.choice(CHOICES["error_code"]) if failed else None
        records.append(
            EventRecord(
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
                ts=START + timedelta(microseconds=rng.randrange(span // timedelta(microseconds=1))),
                outcome="error" if failed else "ok",
                endpoint=str(rng.choice(CHOICES["endpoint"])),
                source="client",
                error_code=code,
                category=None if code is None else ("auth" if code == "E_AUTH" else "protocol"),
                platform=rng.choice(CHOICES["platform"]),
                os_version=rng.choice(CHOICES["os_version"]),
                app_version=rng.choice(CHOICES["app_version"]),
                sdk_version=rng.choice(CHOICES["sdk_version"]),
                count=1 if failed else rng.choice((1, 1, 3)),
            )
        )
    return records


def ingest(store: Store, records: list[EventRecord]) -> None:
    for start in range(0, len(records), 700):
        store.ingest_events(records[start : start + 700])


def by_events(
    records: list[EventRecord],
    window: Window,
    column: str,
    *,
    endpoint: str | None = None,
    error_code: str | None = None,
) -> dict[str | None, tuple[int, int, str, str]]:
    """The GROUP BY over the raw events: value → (failures, calls, first, last seen)."""
    found: dict[str | None, list[Any]] = {}
    for record in records:
        if not window.since <= record.ts < window.until:
            continue
        if endpoint is not None and record.endpoint != endpoint:
            continue
        failed = record.outcome == "error" and error_code in (None, record.error_code)
        entry = found.setdefault(getattr(record, column), [0, 0, record.ts, record.ts])
        entry[0] += record.count if failed else 0
        entry[1] += record.count
        entry[2] = min(entry[2], record.ts)
        entry[3] = max(entry[3], record.ts)
    return {
        value: (failures, calls, rfc3339(first), rfc3339(last))
        for value, (failures, calls, first, last) in found.items()
    }


def by_report(report: dict[str, Any]) -> dict[str | None, tuple[int, int, str, str]]:
    assert report["other"]["values"] == 0
    return {
        v["value"]: (v["failures"], v["calls"], v["first_seen"], v["last_seen"])
        for v in report["values"]
    }


def test_ingest_keeps_the_daily_rollups_equal_to_the_minute_rollups(store: Store) -> None:
    records = generated(1500, seed=1)
    ingest(store, records)
    ingest(store, records[:300])  # duplicates change nothing, in either table

    def table(grain: str) -> list[RollupGroup]:
        (found,) = store.rollup_groups(
            spans=[RollupSpan(grain, *ALL_TIME)], column_sets=[GROUP_COLUMNS]
        )
        return sorted(found, key=lambda g: tuple(v or "" for v in g.values))

    daily = table("day")
    assert daily == table("minute")
    assert sum(g.calls for g in daily) == sum(r.count for r in records)
    assert sum(g.failures for g in daily) == sum(r.count for r in records if r.outcome == "error")


@pytest.mark.parametrize(
    ("since", "until"),
    [
        # ragged on both sides (seconds too: widened to whole minutes)
        ("2029-12-20T23:05:30Z", "2029-12-23T04:17:00Z"),
        ("2029-12-21T00:00:00Z", "2029-12-23T00:00:00Z"),  # whole days only
        ("2029-12-21T09:00:00+08:00", "2029-12-21T19:59:00Z"),  # inside one day
        ("2029-12-20T00:00:00Z", "2029-12-25T00:00:00Z"),  # all of it
    ],
)
def test_a_report_equals_a_group_by_over_the_raw_events(
    store: Store, clock: FakeClock, since: str, until: str
) -> None:
    records = generated(2500, seed=2)
    ingest(store, records)
    params = {"since": since, "until": until, "top": "100"}
    query = BreakdownQuery.from_params(params, clock.now)
    window = query.window.aligned(timedelta(minutes=1))
    reports = breakdown(store, query)
    assert isinstance(reports, list)
    for dimension, report in zip(DIMENSIONS, reports, strict=True):
        assert by_report(report) == by_events(records, window, dimension), dimension
        assert report["since"] == rfc3339(window.since)
    for filters in ({"endpoint": "POST /pay"}, {"error_code": "E_SLOW"}):
        narrowed = breakdown(
            store, BreakdownQuery.from_params({**params, **filters, "dimension": "os_version"},
                                              clock.now)
        )  # fmt: skip
        assert isinstance(narrowed, dict)
        assert by_report(narrowed) == by_events(records, window, "os_version", **filters)


def test_the_ragged_window_reads_both_tables() -> None:
    window = Window(
        datetime(2029, 12, 20, 23, 5, tzinfo=UTC), datetime(2029, 12, 23, 4, 17, tzinfo=UTC)
    )
    assert [(s.grain, s.window.since.day, s.window.until.day) for s in spans(window)] == [
        ("minute", 20, 21),
        ("day", 21, 23),
        ("minute", 23, 23),
    ]
    inside = Window(window.since, window.since + timedelta(hours=3))
    assert [s.grain for s in spans(inside)] == ["minute"]


def test_a_cross_tab_equals_the_raw_events(store: Store, clock: FakeClock) -> None:
    records = generated(1200, seed=3)
    ingest(store, records)
    query = BreakdownQuery.from_params(
        {"since": "2029-12-20T22:00:00Z", "until": "2029-12-23T03:00:00Z",
         "dimension": "platform", "by": "os_version"},
        clock.now,
    )  # fmt: skip
    table = breakdown(store, query)
    assert isinstance(table, dict)
    expected: dict[tuple[str | None, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        if query.window.since <= record.ts < query.window.until:
            cell = expected[(record.platform, record.os_version)]
            cell[0] += record.count if record.outcome == "error" else 0
            cell[1] += record.count
    got = {
        (row["value"], column["value"]): [column["failures"], column["calls"]]
        for row in table["rows"]
        for column in row["columns"]
    }
    assert got == dict(expected)


def test_a_time_series_equals_the_raw_events(store: Store, clock: FakeClock) -> None:
    records = generated(1500, seed=4)
    ingest(store, records)
    for step, length in (("hour", timedelta(hours=1)), ("day", DAY)):
        query = TimeseriesQuery.from_params(
            {"since": "2029-12-20T20:30:00Z", "until": "2029-12-24T00:00:00Z", "step": step,
             "endpoint": "GET /cart"},
            clock.now,
        )  # fmt: skip
        series = timeseries(store, query)
        window = query.window.aligned(length)
        expected: dict[str, list[int]] = {}
        moment = window.since
        while moment < window.until:
            expected[rfc3339(moment)] = [0, 0]
            moment += length
        for record in records:
            if window.since <= record.ts < window.until and record.endpoint == "GET /cart":
                epoch = datetime(1970, 1, 1, tzinfo=UTC)
                bucket = expected[rfc3339(epoch + (record.ts - epoch) // length * length)]
                bucket[0] += record.count
                bucket[1] += record.count if record.outcome == "error" else 0
        assert {p["start"]: [p["calls"], p["failures"]] for p in series["points"]} == expected
        assert [p["start"] for p in series["points"]] == list(expected)


def test_pruning_keeps_daily_rollups_longer(store: Store, clock: FakeClock) -> None:
    old = clock.now - timedelta(days=500)
    recent = generated(20, seed=5, span=timedelta(hours=1))  # Dec 2029
    store.ingest_events(recent)
    store.ingest_events(
        [EventRecord(event_id="old", ts=old, outcome="ok", endpoint="GET /x", source="client")]
    )
    result = store.prune_events(
        event_retention=timedelta(days=30), rollup_retention=timedelta(days=400)
    )
    assert (result.events, result.rollups, result.daily_rollups) == (1, 1, 0)

    def daily(since: datetime, until: datetime) -> list[RollupGroup]:
        (found,) = store.rollup_groups(spans=[RollupSpan("day", since, until)], column_sets=[()])
        return found

    old_day = (old - DAY, old + DAY)
    assert [g.calls for g in daily(*old_day)] == [1]
    result = store.prune_events(
        event_retention=timedelta(days=30),
        rollup_retention=timedelta(days=400),
        daily_rollup_retention=timedelta(days=450),
    )
    assert result.daily_rollups == 1
    assert daily(*old_day) == []
    # The recent rows stay.
    assert [g.calls for g in daily(*ALL_TIME)] == [sum(r.count for r in recent)]
    with pytest.raises(StoreInputError):
        store.prune_events(
            event_retention=timedelta(days=1),
            rollup_retention=timedelta(days=1),
            daily_rollup_retention=timedelta(0),
        )


@pytest.mark.parametrize(
    "arguments",
    [
        {"spans": [RollupSpan("week", *ALL_TIME)], "column_sets": [()]},
        {"spans": [RollupSpan("day", *ALL_TIME)], "column_sets": [("user_id",)]},
        {"spans": [RollupSpan("day", *ALL_TIME)], "column_sets": [("platform", "platform")]},
        {"spans": [RollupSpan("day", *ALL_TIME)], "column_sets": [()], "endpoint": "x" * 10_000},
        {"spans": [RollupSpan("day", *ALL_TIME)] * 17, "column_sets": [()]},
    ],
)
def test_report_reads_refuse_unknown_names(store: Store, arguments: dict[str, Any]) -> None:
    with pytest.raises(StoreInputError):
        store.rollup_groups(**arguments)
    with pytest.raises(StoreInputError):
        store.rollup_series(grain="week", since=ALL_TIME[0], until=ALL_TIME[1], step=DAY)


def test_incidents_overlapping_a_window(store: Store) -> None:
    def declare(name: str, start: datetime, end: datetime | None) -> None:
        store.declare_incident(
            IncidentRecord(
                id=name, scope=("*",), start=start, end=end, severity=None, manual=True,
                state="open", affected_users=None, declared_at=start,
            )
        )  # fmt: skip

    day = datetime(2029, 12, 21, tzinfo=UTC)
    declare("inc_before", day - DAY, day - timedelta(hours=1))
    declare("inc_edge", day - timedelta(hours=2), day + timedelta(minutes=1))
    declare("inc_open", day + timedelta(hours=5), None)
    declare("inc_after", day + DAY, day + DAY + timedelta(hours=1))
    found = store.incidents_overlapping(day, day + DAY)
    assert [i.id for i in found] == ["inc_edge", "inc_open"]
