"""Idempotency records per the IETF Idempotency-Key draft, on both back ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from server_stub.store import (
    AlreadyRedeemed,
    BudgetExhausted,
    IdempotencyKeyLost,
    InFlight,
    KeyedRedemption,
    Mismatch,
    New,
    Redeemed,
    RedeemOutcome,
    Replay,
    Store,
    StoredResponse,
    StoreInputError,
    open_store,
)
from tests.conftest import FakeClock
from tests.support.store_support import request


def render(outcome: RedeemOutcome) -> StoredResponse:
    if isinstance(outcome, Redeemed):
        return StoredResponse(201, json.dumps({"id": outcome.redemption.id}).encode())
    return StoredResponse(409, json.dumps({"error_code": type(outcome).__name__}).encode())


def broken(outcome: RedeemOutcome) -> StoredResponse:
    raise RuntimeError("renderer bug")


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    """The store as the server opens it: keyed redemptions stored with ``render``."""
    with open_store(store_url, clock=clock, render=render) as opened:
        yield opened


@pytest.fixture
def broken_store(store_url: str, clock: FakeClock, store: Store) -> Iterator[Store]:
    """The same database, opened with a renderer that fails."""
    with open_store(store_url, clock=clock, render=broken) as opened:
        yield opened


def claim(store: Store, key: str = "key-1", fingerprint: str = "fp-1", scope: str = "app") -> New:
    outcome = store.begin_idempotent(scope, key, fingerprint)
    assert isinstance(outcome, New), outcome
    return outcome


def test_a_completed_request_is_replayed_with_its_status_and_body(store: Store) -> None:
    first = claim(store)
    assert not first.taken_over
    outcome = store.redeem(request("j1"), claim=first)
    assert isinstance(outcome, Redeemed)
    assert store.redemption_by_jti("j1").idempotency_key == "key-1"  # type: ignore[union-attr]
    replay = store.begin_idempotent("app", "key-1", "fp-1")
    assert replay == Replay(status=201, body=json.dumps({"id": outcome.redemption.id}).encode())


def test_a_refusal_is_stored_and_replayed_too(store: Store) -> None:
    store.set_budget("points", "incident-1", 0, unit="points")
    outcome = store.redeem(request("j1"), claim=claim(store))
    assert isinstance(outcome, BudgetExhausted)
    replay = store.begin_idempotent("app", "key-1", "fp-1")
    assert replay == Replay(status=409, body=b'{"error_code": "BudgetExhausted"}')


def test_another_fingerprint_is_a_mismatch_in_flight_or_done(store: Store) -> None:
    first = claim(store)
    assert store.begin_idempotent("app", "key-1", "fp-2") == Mismatch()
    store.complete_idempotent(first, 200, b"ok")
    assert store.begin_idempotent("app", "key-1", "fp-2") == Mismatch()


def test_a_key_in_flight_is_refused_until_its_lock_times_out(
    store: Store, clock: FakeClock
) -> None:
    first = claim(store)
    busy = store.begin_idempotent("app", "key-1", "fp-1")
    assert busy == InFlight(locked_until=clock.now + timedelta(seconds=60))
    clock.advance(timedelta(seconds=59))
    assert isinstance(store.begin_idempotent("app", "key-1", "fp-1"), InFlight)
    clock.advance(timedelta(seconds=1))
    second = claim(store)
    assert second.taken_over
    assert second.owner != first.owner
    # The presumed-dead first request wakes up: it can no longer commit anything.
    with pytest.raises(IdempotencyKeyLost):
        store.redeem(request("j1"), claim=first)
    assert store.redemption_by_jti("j1") is None
    with pytest.raises(IdempotencyKeyLost):
        store.complete_idempotent(first, 200, b"late")
    store.redeem(request("j1"), claim=second)
    assert isinstance(store.begin_idempotent("app", "key-1", "fp-1"), Replay)


def test_keys_expire_after_the_ttl_and_are_purged(store: Store, clock: FakeClock) -> None:
    store.complete_idempotent(claim(store, key="old"), 200, b"old")
    clock.advance(timedelta(hours=23))
    store.complete_idempotent(claim(store, key="young"), 200, b"young")
    assert isinstance(store.begin_idempotent("app", "old", "fp-1"), Replay)
    clock.advance(timedelta(hours=1))
    # Expired: the key starts afresh, even with another fingerprint.
    fresh = claim(store, key="old", fingerprint="fp-9")
    assert not fresh.taken_over
    store.abandon_idempotent(fresh)
    assert store.purge_idempotency() == 0  # "old" was abandoned, "young" is 1 h old
    clock.advance(timedelta(hours=23))
    assert store.purge_idempotency() == 1
    assert isinstance(store.begin_idempotent("app", "young", "fp-1"), New)


def test_scopes_keep_callers_apart_and_abandon_frees_the_key(store: Store) -> None:
    mine = claim(store, scope="app-a")
    claim(store, scope="app-b")
    assert store.abandon_idempotent(mine)
    assert not store.abandon_idempotent(mine)
    claim(store, scope="app-a")


def test_a_failing_renderer_commits_nothing(store: Store, broken_store: Store) -> None:
    first = claim(store)
    with pytest.raises(RuntimeError, match="renderer bug"):
        broken_store.redeem(request("j1"), claim=first)
    assert store.redemption_by_jti("j1") is None
    assert store.ledger().entries == ()
    assert isinstance(store.begin_idempotent("app", "key-1", "fp-1"), InFlight)


def test_bad_responses_are_refused(store: Store) -> None:
    from server_stub.store import StoreInputError

    first = claim(store)
    for status, body in ((99, b""), (200, "text"), (200, b"x" * (256 * 1024 + 1))):
        with pytest.raises(StoreInputError):
            store.complete_idempotent(first, status, body)  # type: ignore[arg-type]
    with pytest.raises(StoreInputError):
        store.begin_idempotent("app", "k" * 256, "fp")


def test_redeem_idempotent_claims_and_redeems_in_one_transaction(store: Store) -> None:
    def once(fingerprint: str = "fp-1") -> object:
        return store.redeem_idempotent(
            request("j1"), scope="app", key="key-1", fingerprint=fingerprint
        )

    first = once()
    assert isinstance(first, Redeemed)
    assert once() == Replay(status=201, body=json.dumps({"id": first.redemption.id}).encode())
    assert once("fp-2") == Mismatch()
    busy = claim(store, key="key-2")
    assert isinstance(
        store.redeem_idempotent(request("j2"), scope="app", key="key-2", fingerprint="fp-1"),
        InFlight,
    )
    assert store.redemption_by_jti("j2") is None
    store.abandon_idempotent(busy)


def test_redeem_idempotent_keeps_no_claim_when_it_fails(store: Store, broken_store: Store) -> None:
    with pytest.raises(RuntimeError):
        broken_store.redeem_idempotent(request("j1"), scope="app", key="key-1", fingerprint="fp-1")
    assert store.redemption_by_jti("j1") is None
    assert isinstance(store.begin_idempotent("app", "key-1", "fp-1"), New)


def keyed(jti: str, key: str, **fields: object) -> KeyedRedemption:
    return KeyedRedemption(request(jti, **fields), "app", key, "fp-" + jti)


def test_a_batch_runs_each_item_as_if_alone_in_order(store: Store) -> None:
    store.set_budget("points", "incident-1", 3, unit="points")
    results = store.redeem_idempotent_batch(
        [
            keyed("j1", "k1", amount=2),
            keyed("j1", "k2", amount=2),  # same jti, later in the batch
            keyed("j1", "k1", amount=2),  # same key and body: the first's response
            keyed("j2", "k3", amount=2),  # the budget has 1 left
            keyed("j3", "k4", subject="x" * 10_000),  # out of range: kept out
            keyed("j4", "k5", amount=1),
        ]
    )
    first = results[0]
    assert isinstance(first, Redeemed)
    assert isinstance(results[1], AlreadyRedeemed)
    assert results[1].redemption == first.redemption
    assert results[2] == Replay(status=201, body=json.dumps({"id": first.redemption.id}).encode())
    assert isinstance(results[3], BudgetExhausted)
    assert isinstance(results[4], StoreInputError)
    assert isinstance(results[5], Redeemed)
    assert store.budget("points", "incident-1").remaining == 0  # type: ignore[union-attr]
    # The refusal was stored under its key, as redeem_idempotent would have.
    again = store.redeem_idempotent(
        request("j2", amount=2), scope="app", key="k3", fingerprint="fp-j2"
    )
    assert again == Replay(status=409, body=b'{"error_code": "BudgetExhausted"}')


def test_a_failing_renderer_commits_nothing_of_the_batch(store: Store, broken_store: Store) -> None:
    with pytest.raises(RuntimeError):
        broken_store.redeem_idempotent_batch([keyed("j1", "k1"), keyed("j2", "k2")])
    assert store.redemption_by_jti("j1") is None
    assert isinstance(store.begin_idempotent("app", "k1", "fp-j1"), New)
    assert store.redeem_idempotent_batch([]) == []


def test_a_store_without_a_renderer_refuses_keyed_redemptions(store_url: str) -> None:
    from errdiscount_sdk import ConfigurationError

    with open_store(store_url) as plain:
        with pytest.raises(ConfigurationError, match="render"):
            plain.redeem_idempotent(request("j1"), scope="app", key="k", fingerprint="fp")
        first = plain.begin_idempotent("app", "k", "fp")
        assert isinstance(first, New)
        with pytest.raises(ConfigurationError):
            plain.redeem(request("j1"), claim=first)
        assert plain.redemption_by_jti("j1") is None
