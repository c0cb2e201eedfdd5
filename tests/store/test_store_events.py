"""Call events in the store, on both back ends: dedupe, rollups, queries, retention."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server_stub.store import EventRecord, IngestResult, Store, StoreInputError
from tests.conftest import FakeClock

T0 = datetime(2030, 1, 1, 11, 58, 10, tzinfo=UTC)


def event(**overrides: Any) -> EventRecord:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": T0,
        "outcome": "ok",
        "endpoint": "POST /api/pay",
        "source": "client",
        "user_id": "alice",
        "method": "POST",
        "platform": "android",
        "os_version": "14",
        "app_version": "2.3.0",
        "sdk_version": "0.4.0",
    }
    values.update(overrides)
    return EventRecord(**values)


def test_a_batch_is_stored_and_a_resent_batch_is_all_duplicates(store: Store) -> None:
    batch = [event(), event(outcome="error", status=503, error_code="HTTP_503")]
    assert store.ingest_events(batch) == IngestResult(accepted=2, duplicates=0)
    before = store.event_rollups(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert store.ingest_events(batch) == IngestResult(accepted=0, duplicates=2)
    # A duplicate changes nothing, not even the rollups.
    assert store.event_rollups(T0 - timedelta(hours=1), T0 + timedelta(hours=1)) == before
    assert len(store.events()) == 2


def test_repeats_inside_one_batch_count_once(store: Store) -> None:
    first = event(count=3)
    again = event(event_id=first.event_id, count=50, outcome="error")
    assert store.ingest_events([first, again, event()]) == IngestResult(accepted=2, duplicates=1)
    (stored,) = store.events(limit=1, since=T0, until=T0 + timedelta(seconds=1), user_id="alice")
    rollups = store.event_rollups(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    # The first occurrence won: 3 + 1 ok calls, no failures.
    assert [(r.outcome, r.calls, r.failures) for r in rollups] == [("ok", 4, 0)]
    assert stored.event.outcome == "ok"


def test_rollups_group_by_minute_and_every_dimension(store: Store) -> None:
    minute = T0.replace(second=0)
    store.ingest_events(
        [
            event(ts=minute + timedelta(seconds=5), count=10),
            event(ts=minute + timedelta(seconds=40), count=2),
            event(ts=minute + timedelta(seconds=7), outcome="error", error_code="PAY_001",
                  category="business", status=402),
            event(ts=minute + timedelta(seconds=9), outcome="error", error_code="PAY_001",
                  category="business", status=402, app_version="2.4.0"),
            event(ts=minute + timedelta(seconds=61), platform=None, os_version=None),
        ]
    )  # fmt: skip
    rows = store.event_rollups(minute, minute + timedelta(minutes=5))
    summary = [
        (r.minute, r.outcome, r.error_code, r.app_version, r.platform, r.calls, r.failures)
        for r in rows
    ]
    next_minute = minute + timedelta(minutes=1)
    assert sorted(summary, key=repr) == sorted(
        [
            (minute, "ok", None, "2.3.0", "android", 12, 0),
            (minute, "error", "PAY_001", "2.3.0", "android", 1, 1),
            (minute, "error", "PAY_001", "2.4.0", "android", 1, 1),
            (next_minute, "ok", None, "2.3.0", None, 1, 0),
        ],
        key=repr,
    )
    ok = next(r for r in rows if r.outcome == "ok" and r.minute == minute)
    assert (ok.first_seen, ok.last_seen) == (
        minute + timedelta(seconds=5),
        minute + timedelta(seconds=40),
    )
    # A later batch widens first/last seen and adds to the same row.
    store.ingest_events(
        [event(ts=minute + timedelta(seconds=1)), event(ts=minute + timedelta(seconds=59))]
    )
    ok = next(
        r
        for r in store.event_rollups(minute, next_minute)
        if r.outcome == "ok" and r.platform == "android"
    )
    assert (ok.calls, ok.first_seen, ok.last_seen) == (
        14,
        minute + timedelta(seconds=1),
        minute + timedelta(seconds=59),
    )


def test_per_user_minutes_count_calls_and_failures(store: Store) -> None:
    minute = T0.replace(second=0)
    store.ingest_events(
        [
            event(user_id="alice", count=5),
            event(user_id="alice", outcome="error"),
            event(user_id="bob", outcome="error", count=2),
            event(user_id=None, count=7),  # anonymous calls are in the rollups only
        ]
    )
    rows = store.user_minutes(minute, minute + timedelta(minutes=1))
    assert [(r.user_id, r.endpoint, r.calls, r.failures) for r in rows] == [
        ("alice", "POST /api/pay", 6, 1),
        ("bob", "POST /api/pay", 2, 2),
    ]
    assert [
        r.user_id for r in store.user_minutes(minute, minute + timedelta(minutes=1), user_id="bob")
    ] == ["bob"]
    assert sum(r.calls for r in store.event_rollups(minute, minute + timedelta(minutes=1))) == 15


def test_every_member_round_trips(store: Store) -> None:
    record = event(
        outcome="error",
        status=504,
        error_code="GATEWAY",
        category="protocol",
        severity="severe",
        transient=True,
        attempts=3,
        duration_ms=1234.5,
        params={"amount": {"type": "int"}, "nested": [1, "x"], "名": "值"},
        count=1,
        segment="vip",
        extensions={"trace_id": "abc"},
        source="provider",
    )
    store.ingest_events([record])
    (stored,) = store.events()
    assert stored.event == record
    assert stored.received_at == FakeClock().now


def test_queries_filter_and_return_newest_first(store: Store) -> None:
    records = [
        event(ts=T0 + timedelta(seconds=i), user_id="alice" if i % 2 else "bob",
              endpoint="GET /a" if i < 4 else "GET /b")
        for i in range(8)
    ]  # fmt: skip
    store.ingest_events(records)
    assert [s.event.ts for s in store.events()] == [r.ts for r in reversed(records)]
    alice = store.events(user_id="alice")
    assert {s.event.user_id for s in alice} == {"alice"} and len(alice) == 4
    window = store.events(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=5))
    assert [s.event.ts for s in window] == [T0 + timedelta(seconds=i) for i in (4, 3, 2)]
    assert [s.event.ts for s in store.events(endpoint="GET /b", user_id="bob")] == [
        T0 + timedelta(seconds=6),
        T0 + timedelta(seconds=4),
    ]
    assert len(store.events(limit=3)) == 3
    assert len(store.events(limit=5000)) == 8  # capped at 1000, not refused


def test_a_bad_record_stores_nothing_of_its_batch(store: Store) -> None:
    with pytest.raises(StoreInputError):
        store.ingest_events([event(), event(endpoint="x" * 300)])
    with pytest.raises(StoreInputError):
        store.ingest_events([event(), event(params={"blob": "y" * 20_000})])
    with pytest.raises(StoreInputError):
        store.ingest_events([event(ts=datetime(2030, 1, 1))])  # naive timestamp
    with pytest.raises(StoreInputError):
        store.ingest_events([event(count=0)])
    assert store.events() == []


def test_a_thousand_events_in_one_batch(store: Store) -> None:
    records = [event(ts=T0 + timedelta(milliseconds=i), user_id=f"u{i % 10}") for i in range(1000)]
    assert store.ingest_events(records) == IngestResult(accepted=1000, duplicates=0)
    minute = T0.replace(second=0)
    assert sum(r.calls for r in store.event_rollups(minute, minute + timedelta(minutes=2))) == 1000
    assert len(store.user_minutes(minute, minute + timedelta(minutes=2))) == 10


def test_concurrent_ingests_of_the_same_events_count_each_once(store: Store) -> None:
    records = [event(ts=T0 + timedelta(milliseconds=i)) for i in range(200)]
    results: list[IngestResult] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        results.append(store.ingest_events(records))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.accepted for r in results) == 200
    assert sum(r.duplicates for r in results) == 600
    minute = T0.replace(second=0)
    assert sum(r.calls for r in store.event_rollups(minute, minute + timedelta(minutes=1))) == 200


def test_pruning_drops_old_events_then_old_rollups(store: Store, clock: FakeClock) -> None:
    old = clock.now - timedelta(days=40)
    store.ingest_events([event(ts=old + timedelta(seconds=i)) for i in range(5)])
    store.ingest_events([event(ts=clock.now - timedelta(days=1))])
    result = store.prune_events(
        event_retention=timedelta(days=30), rollup_retention=timedelta(days=400), chunk=2
    )
    assert (result.events, result.rollups, result.user_minutes) == (5, 0, 0)
    assert len(store.events()) == 1
    horizon = (old - timedelta(days=1), clock.now)
    assert sum(r.calls for r in store.event_rollups(*horizon)) == 6  # rollups outlive events
    clock.advance(timedelta(days=380))
    result = store.prune_events(
        event_retention=timedelta(days=30), rollup_retention=timedelta(days=400)
    )
    # The recent event (now 381 days old) is gone; only its rollup is still in the horizon.
    assert (result.events, result.rollups, result.user_minutes) == (1, 1, 1)
    assert [r.calls for r in store.event_rollups(*horizon)] == [1]
    assert store.events() == []


def test_prune_refuses_non_positive_retention(store: Store) -> None:
    with pytest.raises(StoreInputError):
        store.prune_events(event_retention=timedelta(0), rollup_retention=timedelta(days=1))
