"""The transactional outbox in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from server_stub.domain._render import redemption_response
from server_stub.store import (
    DeliveryResult,
    EventNotFound,
    IssuedToken,
    KeyedRedemption,
    NotFailed,
    OutboxStatus,
    Requeued,
    Store,
    StoreInputError,
    append_outbox,
    open_store,
)
from tests.conftest import FakeClock
from tests.support.store_support import request


def issued(jti: str, subject: str = "alice") -> IssuedToken:
    return IssuedToken(
        jti=jti,
        subject=subject,
        issuer="errdiscount-server",
        kind="coupon",
        amount=500,
        unit="USD_cent",
        campaign="coupon",
        expires_at=datetime(2031, 1, 1, tzinfo=UTC),
        alert_id=f"alert-{jti}-" + "x" * 20,
        token="header.payload.signature-secret",
        error_code="PAY_001",
        incident="inc-1",
        alert_url="https://pay.example/v1/alerts/a",
    )


def types(store: Store) -> list[str]:
    return [event.type for event in store.outbox_events()]


def test_issued_redeemed_and_reversed_write_one_event_each(store: Store, clock: FakeClock) -> None:
    store.record_issued(issued("j1"))
    clock.now += timedelta(microseconds=1)  # ids are time-ordered to the microsecond
    outcome = store.redeem(request("j1", kind="coupon", amount=500, unit="USD_cent"))
    redemption = outcome.redemption  # type: ignore[union-attr]
    clock.now += timedelta(microseconds=1)
    store.reverse(redemption.id, "goodwill")
    store.reverse(redemption.id, "twice")  # AlreadyReversed: no second event
    store.redeem(request("j1"))  # AlreadyRedeemed: no event
    assert types(store) == [
        "compensation.issued",
        "compensation.redeemed",
        "compensation.reversed",
    ]
    first, second, third = store.outbox_events()
    assert first.payload["data"]["compensation"] == {"kind": "coupon", "amount": 5, "unit": "USD"}
    assert first.payload["data"]["alert_url"] == "https://pay.example/v1/alerts/a"
    assert second.payload["data"]["error_code"] == "PAY_001"  # from the issued record
    assert second.payload["data"]["incident"] == "inc-1"
    assert third.payload["data"]["reason"] == "goodwill"
    assert all("signature-secret" not in str(e.payload) for e in store.outbox_events())
    assert {e.status for e in store.outbox_events()} == {OutboxStatus.PENDING}
    assert first.id < second.id < third.id  # time-ordered ids


def test_the_group_commit_path_writes_the_event_in_the_same_transaction(store_url: str) -> None:
    with open_store(store_url, render=redemption_response) as store:
        items = [KeyedRedemption(request(f"g{i}"), "app", f"k{i}", f"fp{i}") for i in range(3)]
        store.redeem_idempotent_batch(items)
        store.redeem_idempotent_batch(items)  # replays: nothing new
        assert types(store) == ["compensation.redeemed"] * 3


def test_a_refused_redemption_rolls_its_event_back(store: Store) -> None:
    store.set_budget("points", "incident-1", 1, unit="points")
    store.redeem(request("b1", amount=5))  # BudgetExhausted
    assert types(store) == []


def test_claims_lease_and_only_the_holder_finishes(store: Store, clock: FakeClock) -> None:
    store.record_issued(issued("j1"))
    [claimed] = store.claim_events("one", lease=timedelta(seconds=30))
    assert claimed.attempts == 1
    assert store.claim_events("two") == []  # leased
    clock.now += timedelta(seconds=31)
    [taken] = store.claim_events("two")  # the lease ran out: due again
    assert taken.id == claimed.id and taken.attempts == 2
    # The first holder's late result records its acknowledgement but not the status.
    assert store.finish_deliveries([DeliveryResult(claimed.id, "one", ("sink-a",))]) == 0
    event = store.outbox_event(claimed.id)
    assert event is not None and event.status is OutboxStatus.DELIVERING
    assert event.delivered_to == ("sink-a",)
    assert store.finish_deliveries([DeliveryResult(taken.id, "two", ("sink-b",))]) == 1
    event = store.outbox_event(claimed.id)
    assert event is not None and event.status is OutboxStatus.DELIVERED
    assert event.delivered_to == ("sink-a", "sink-b")


def test_a_round_of_many_delivered_events_is_recorded_for_its_holder_only(
    store: Store, clock: FakeClock
) -> None:
    for index in range(7):
        store.record_issued(issued(f"j{index}"))
    mine = store.claim_events("one", limit=4)
    clock.now += timedelta(seconds=31)
    theirs = store.claim_events("two", limit=7)  # mine ran out and were taken over
    assert {e.id for e in mine} < {e.id for e in theirs} and len(theirs) == 7
    late = [DeliveryResult(event.id, "one", ("sink-a",)) for event in mine]
    assert store.finish_deliveries(late) == 0
    done = [DeliveryResult(event.id, "two", ("sink-b",)) for event in theirs[:6]]
    retry = DeliveryResult(theirs[6].id, "two", error="HTTP 503", retry_at=clock.now)
    assert store.finish_deliveries([*done, retry]) == 7
    events = {event.id: event for event in store.outbox_events()}
    assert [events[e.id].status for e in theirs] == [OutboxStatus.DELIVERED] * 6 + [
        OutboxStatus.PENDING
    ]
    assert {events[e.id].delivered_to for e in mine} == {("sink-a", "sink-b")}
    assert events[theirs[6].id].last_error == "HTTP 503"


def test_without_a_sink_due_events_are_settled_in_one_statement(
    store: Store, clock: FakeClock
) -> None:
    for index in range(3):
        store.record_issued(issued(f"j{index}"))
    [leased] = store.claim_events("one", limit=1, lease=timedelta(seconds=30))
    [dead] = store.claim_events("one", limit=1)
    store.finish_deliveries([DeliveryResult(dead.id, "one", error="HTTP 500")])
    assert store.settle_unrouted() == 1  # the third: neither leased nor a dead letter
    events = {event.id: event for event in store.outbox_events()}
    settled = [e for e in events.values() if e.id not in (leased.id, dead.id)]
    assert [(e.status, e.attempts, e.delivered_to) for e in settled] == [
        (OutboxStatus.DELIVERED, 1, ())
    ]
    assert settled[0].delivered_at == clock.now
    assert events[leased.id].status is OutboxStatus.DELIVERING
    assert events[dead.id].status is OutboxStatus.FAILED
    clock.now += timedelta(seconds=31)  # the lease ran out: due, so settled too
    assert store.settle_unrouted() == 1
    assert store.settle_unrouted() == 0
    [finished] = [e for e in store.outbox_events() if e.id == leased.id]
    assert finished.status is OutboxStatus.DELIVERED and finished.attempts == 2
    # Its holder's late result changes nothing.
    assert store.finish_deliveries([DeliveryResult(leased.id, "one")]) == 0


def test_retry_then_dead_letter_then_requeue(store: Store, clock: FakeClock) -> None:
    store.record_issued(issued("j1"))
    [claimed] = store.claim_events("one")
    later = clock.now + timedelta(seconds=5)
    store.finish_deliveries([DeliveryResult(claimed.id, "one", error="HTTP 500", retry_at=later)])
    assert store.claim_events("one") == []
    clock.now = later
    [again] = store.claim_events("one")
    store.finish_deliveries([DeliveryResult(again.id, "one", error="HTTP 500")])
    [dead] = store.outbox_events(status=OutboxStatus.FAILED)
    assert dead.last_error == "HTTP 500" and dead.attempts == 2
    assert isinstance(store.requeue_event(dead.id), Requeued)
    assert isinstance(store.requeue_event(dead.id), NotFailed)
    assert isinstance(store.requeue_event("evt_missing"), EventNotFound)
    [back] = store.claim_events("one")
    assert back.attempts == 1


def test_every_dead_letter_is_requeued_at_once(store: Store, clock: FakeClock) -> None:
    for jti in ("a", "b", "c"):
        store.record_issued(issued(jti))
        clock.now += timedelta(microseconds=1)
    first, second, third = store.claim_events("one")
    store.finish_deliveries(
        [
            DeliveryResult(first.id, "one", error="HTTP 500"),
            DeliveryResult(second.id, "one", error="HTTP 500"),
            DeliveryResult(third.id, "one", ("sink-a",)),
        ]
    )
    assert store.requeue_failed() == 2
    assert store.requeue_failed() == 0
    pending = store.outbox_events(status=OutboxStatus.PENDING)
    assert [e.id for e in pending] == [first.id, second.id]
    assert all(e.attempts == 0 for e in pending)
    assert [e.id for e in store.outbox_events(status=OutboxStatus.DELIVERED)] == [third.id]


def test_append_outbox_checks_type_and_size(store: Store) -> None:
    def write(event_type: str, data: dict[str, object]) -> None:
        store._dialect.run(  # the detector's way in: inside its own transaction
            lambda tx: append_outbox(tx, event_type, data, now=1), write=True
        )

    write("incident.opened", {"incident": "inc-1"})
    assert types(store) == ["incident.opened"]
    with pytest.raises(StoreInputError, match="unknown event type"):
        write("incident.exploded", {})
    with pytest.raises(StoreInputError, match="20480 bytes"):
        write("incident.closed", {"blob": "x" * 21_000})


@pytest.mark.postgres
def test_postgres_replicas_claim_disjoint_batches(postgres_database: str, store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is the PostgreSQL path")
    with open_store(store_url) as store:
        for index in range(40):
            store.record_issued(issued(f"p{index}"))
        claims: dict[str, list[str]] = {}
        start = threading.Barrier(4)

        def claimer(name: str) -> None:
            start.wait()
            got: list[str] = []
            while batch := store.claim_events(name, limit=3):
                got.extend(event.id for event in batch)
            claims[name] = got

        threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [event_id for got in claims.values() for event_id in got]
        assert len(every) == 40 == len(set(every))


def test_webhook_endpoints_and_sink_health(store: Store, clock: FakeClock) -> None:
    endpoint = store.add_webhook_endpoint(
        "https://crm.example/h", ["whsec_x"], ["compensation.redeemed"]
    )
    assert [e.id for e in store.webhook_endpoints()] == [endpoint.id]
    first = store.sink_failed(endpoint.id)
    clock.now += timedelta(hours=1)
    assert store.sink_failed(endpoint.id).failing_since == first.failing_since  # the streak
    store.sinks_ok([endpoint.id])
    assert store.sink_failed(endpoint.id).failing_since == clock.now  # a new streak
    store.disable_sink(endpoint.id, "HTTP 410 Gone")
    [listed] = store.webhook_endpoints()
    assert listed.health is not None and listed.health.disabled_reason == "HTTP 410 Gone"
    with pytest.raises(StoreInputError):
        store.add_webhook_endpoint("https://crm.example/h", ["whsec_x"], ["nope"])
    assert store.remove_webhook_endpoint(endpoint.id)
    assert store.webhook_endpoints() == []


def test_enabling_an_endpoint_clears_its_disabled_state_and_its_streak(
    store: Store, clock: FakeClock
) -> None:
    endpoint = store.add_webhook_endpoint("https://crm.example/h", ["whsec_x"])
    other = store.add_webhook_endpoint("https://crm.example/other", ["whsec_y"])
    store.sink_failed(endpoint.id)
    store.sink_failed(other.id)
    store.disable_sink(endpoint.id, "failing for 5 days")
    enabled = store.enable_webhook_endpoint(endpoint.id)
    assert enabled is not None and enabled.id == endpoint.id and enabled.health is None
    listed = {e.id: e.health for e in store.webhook_endpoints()}
    assert listed[endpoint.id] is None  # enabled, and the failure streak starts afresh
    assert listed[other.id] is not None and listed[other.id].failing_since is not None
    clock.now += timedelta(days=6)
    # A new failure starts a new streak (now), not one counted from before the enable.
    assert store.sink_failed(endpoint.id).failing_since == clock.now
    assert store.enable_webhook_endpoint(endpoint.id) is not None  # idempotent
    assert store.enable_webhook_endpoint("we_missing") is None
    # A flag-configured sink has health but no endpoint row.
    store.disable_sink("cfg_abc", "HTTP 410 Gone")
    assert store.enable_webhook_endpoint("cfg_abc") is None
    assert store.enable_sink("cfg_abc")
    assert not store.enable_sink("cfg_abc")  # nothing left to clear
    assert "cfg_abc" not in store.sink_health()


def test_delivered_events_are_pruned_after_the_retention_and_dead_letters_are_kept(
    store: Store, clock: FakeClock
) -> None:
    for jti in ("old", "dead", "waiting", "recent"):
        store.record_issued(issued(jti))
        clock.now += timedelta(microseconds=1)
    by_jti = {e.payload["data"]["jti"]: e.id for e in store.outbox_events()}
    claimed = {event.id: event for event in store.claim_events("one")}
    store.finish_deliveries(
        [
            DeliveryResult(by_jti["old"], "one", ("sink-a", "sink-b")),
            DeliveryResult(by_jti["dead"], "one", ("sink-a",), error="sink-b: HTTP 500"),
            DeliveryResult(
                by_jti["waiting"], "one", error="HTTP 500", retry_at=clock.now + timedelta(days=90)
            ),
        ]
    )
    clock.now += timedelta(days=31)
    [recent] = store.claim_events("one")
    assert recent.id == by_jti["recent"] and set(claimed) > {recent.id}
    store.finish_deliveries([DeliveryResult(recent.id, "one", ("sink-a",))])
    with pytest.raises(StoreInputError):
        store.prune_outbox(retention=timedelta(0))
    assert store.prune_outbox(retention=timedelta(days=30), chunk=1) == 1
    left = {e.payload["data"]["jti"]: e for e in store.outbox_events()}
    # Delivered 31 days ago: gone, with its deliveries. Delivered just now: kept.
    assert sorted(left) == ["dead", "recent", "waiting"]
    assert store.outbox_event(by_jti["old"]) is None
    assert left["dead"].status is OutboxStatus.FAILED  # a dead letter stays until requeued
    assert left["dead"].delivered_to == ("sink-a",)
    assert left["waiting"].status is OutboxStatus.PENDING
    assert store.prune_outbox(retention=timedelta(days=30)) == 0
    remaining = store._dialect.run(  # no orphan acknowledgement rows
        lambda tx: tx.all("SELECT outbox_id FROM outbox_deliveries ORDER BY outbox_id"),
        write=False,
    )
    assert sorted(row["outbox_id"] for row in remaining) == sorted(
        [by_jti["dead"], by_jti["recent"]]
    )
    # Requeued, delivered, and old enough: now it goes too.
    store.requeue_event(by_jti["dead"])
    [again] = store.claim_events("one")
    store.finish_deliveries([DeliveryResult(again.id, "one", ("sink-b",))])
    clock.now += timedelta(days=31)
    assert store.prune_outbox(retention=timedelta(days=30)) == 2
    assert [e.payload["data"]["jti"] for e in store.outbox_events()] == ["waiting"]


def test_reminders_seen_belong_to_their_subject(store: Store) -> None:
    store.record_issued(issued("j1", "alice"))
    assert not store.mark_reminder_seen("j1", "bob")
    assert store.mark_reminder_seen("j1", "alice")
    assert store.mark_reminder_seen("j1", "alice")  # idempotent
    assert store.reminders_seen("alice") == {"j1"}
    assert store.reminders_seen("bob") == set()
