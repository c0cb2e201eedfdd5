"""Outcome events and the compensation reports' reads, on both back ends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server_stub.store import (
    EventRecord,
    IngestResult,
    IssuedToken,
    OutcomeRecord,
    Redeemed,
    RedemptionRequest,
    Store,
    StoreInputError,
)
from tests.conftest import FakeClock

DAY = timedelta(days=1)


def outcome(**overrides: Any) -> OutcomeRecord:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": datetime(2030, 1, 1, 11, tzinfo=UTC),
        "name": "purchase",
        "user_id": "alice",
        "value": 19.9,
    }
    values.update(overrides)
    return OutcomeRecord(**values)


def call(**overrides: Any) -> EventRecord:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": datetime(2030, 1, 1, 10, tzinfo=UTC),
        "outcome": "error",
        "endpoint": "POST /api/pay",
        "source": "client",
        "user_id": "alice",
        "status": 503,
        "category": "protocol",
    }
    values.update(overrides)
    return EventRecord(**values)


def test_outcomes_and_calls_are_one_batch_deduplicated_on_event_id(store: Store) -> None:
    first, second = outcome(), outcome(user_id="bob", value="gold", name="upgrade")
    batch = [call(), first, second, outcome(event_id=first.event_id, user_id="eve")]
    assert store.ingest_events(batch) == IngestResult(accepted=3, duplicates=1)
    assert store.ingest_events([first, call(event_id=batch[0].event_id)]) == IngestResult(
        accepted=0, duplicates=2
    )
    since, until = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)
    # The first occurrence won (alice, not eve); names are kept apart.
    assert store.outcome_times("purchase", since, until) == [("alice", first.ts)]
    assert store.outcome_times("upgrade", since, until) == [("bob", second.ts)]
    (failure,) = store.failure_rows(since, until)
    assert (failure.user_id, failure.category, failure.status) == ("alice", "protocol", 503)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": ""},
        {"name": "n" * 129},
        {"user_id": "u" * 257},
        {"event_id": "x\x00"},
        {"value": float("inf")},
        {"extensions": {"big": "x" * 20_000}},
    ],
)
def test_outcomes_out_of_range_are_refused_and_nothing_is_stored(
    store: Store, bad: dict[str, Any]
) -> None:
    with pytest.raises(StoreInputError):
        store.ingest_events([call(), outcome(**bad)])
    assert store.events() == []


def test_outcomes_are_pruned_with_the_call_events(store: Store, clock: FakeClock) -> None:
    old = outcome(ts=clock() - timedelta(days=31))
    kept = outcome(ts=clock() - timedelta(days=1))
    store.ingest_events([old, kept])
    result = store.prune_events(
        event_retention=timedelta(days=30), rollup_retention=timedelta(days=400), chunk=1
    )
    assert result.outcomes == 1
    times = store.outcome_times("purchase", clock() - timedelta(days=60), clock())
    assert times == [("alice", kept.ts)]


def _issued(jti: str, clock: FakeClock, **overrides: Any) -> IssuedToken:
    values: dict[str, Any] = {
        "jti": jti,
        "subject": "alice",
        "issuer": "iss",
        "kind": "points",
        "amount": 100,
        "unit": "points",
        "campaign": "points",
        "expires_at": clock() + DAY,
        "alert_id": f"alert-{jti}",
        "token": "a.b.c",
        "error_code": "PAY_001",
        "severity": "minor",
        "segment": "new",
    }
    values.update(overrides)
    return IssuedToken(**values)


def test_funnel_rows_count_each_stage_per_day_and_dimensions(
    store: Store, clock: FakeClock
) -> None:
    day = clock().replace(hour=0, minute=0, second=0, microsecond=0)
    for jti in ("j1", "j2", "j3"):
        assert store.record_issued(_issued(jti, clock))
    store.record_issued(_issued("j4", clock, unit="USD_cent", kind="coupon", amount=250,
                                severity=None, segment=None))  # fmt: skip
    assert store.mark_shown("alert-j1") and store.mark_shown("alert-j2")
    assert not store.mark_shown("alert-j1")
    for jti in ("j1", "j2"):
        grant = RedemptionRequest(
            jti=jti, subject="alice", issuer="iss", kind="points", amount=100,
            unit="points", campaign="points",
        )  # fmt: skip
        redeemed = store.redeem(grant)
        assert isinstance(redeemed, Redeemed)
    store.reverse(redeemed.redemption.id, "ticket")
    clock.advance(2 * DAY)
    store.record_issued(_issued("j5", clock))  # another day
    rows = store.funnel_rows(day, day + 3 * DAY)
    assert [
        (r.day, r.severity, r.segment, r.unit, r.issued, r.shown, r.redeemed, r.reversed,
         r.issued_amount, r.redeemed_amount)
        for r in rows
    ] == [
        (day, None, None, "USD_cent", 1, 0, 0, 0, 250, 0),
        (day, "minor", "new", "points", 3, 2, 2, 1, 300, 100),
        (day + 2 * DAY, "minor", "new", "points", 1, 0, 0, 0, 100, 0),
    ]  # fmt: skip
    assert store.funnel_rows(day + DAY, day + 2 * DAY) == []
    vouchers = store.voucher_rows(day, day + DAY)
    assert [(v.subject, v.redeemed_at is not None, v.reversed_at is not None)
            for v in vouchers] == [("alice", True, False), ("alice", True, True),
                                   ("alice", False, False), ("alice", False, False)]  # fmt: skip
