"""Group commit of redemptions (server_stub.domain._batch) on real stores (SQLite, and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from server_stub.domain._batch import JOIN_AT_LEAST, MAX_BATCH, RedeemBatcher
from server_stub.store import (
    AlreadyRedeemed,
    KeyedOutcome,
    KeyedRedemption,
    Redeemed,
    RedeemOutcome,
    RedemptionRequest,
    Store,
    StoredResponse,
    StoreError,
    StoreInputError,
    WouldBlock,
    open_store,
)
from tests.support.store_support import request


def render(outcome: RedeemOutcome) -> StoredResponse:
    return StoredResponse(201 if isinstance(outcome, Redeemed) else 409, b"{}")


def keyed(jti: str, key: str | None = None, **fields: object) -> KeyedRedemption:
    return KeyedRedemption(request(jti, **fields), "app", key or "key-" + jti, "fp-" + jti)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/batch.db", render=render) as store:
        yield store


def count_batches(store: Store) -> list[int]:
    sizes: list[int] = []
    original = store.redeem_idempotent_batch

    def counted(
        items: Sequence[KeyedRedemption], *, wait: bool = True
    ) -> list[KeyedOutcome | StoreInputError]:
        sizes.append(len(items))
        return original(items, wait=wait)

    store.redeem_idempotent_batch = counted  # type: ignore[method-assign]
    return sizes


async def test_redemptions_of_one_loop_turn_share_one_transaction(sqlite_store: Store) -> None:
    sizes = count_batches(sqlite_store)
    batcher = RedeemBatcher()
    items = [keyed(f"j{i}") for i in range(5)] + [keyed("j0", key="another-key")]
    results = await asyncio.gather(*(batcher.redeem(sqlite_store, item) for item in items))
    assert sizes == [6]
    assert all(isinstance(result, Redeemed) for result in results[:5])
    assert isinstance(results[5], AlreadyRedeemed)  # same jti, later in the batch
    for i in range(5):
        assert sqlite_store.redemption_by_jti(f"j{i}") is not None


async def test_a_batch_is_bounded_and_the_rest_follows(sqlite_store: Store) -> None:
    sizes = count_batches(sqlite_store)
    batcher = RedeemBatcher()
    items = [keyed(f"j{i}") for i in range(MAX_BATCH + 1)]
    results = await asyncio.gather(*(batcher.redeem(sqlite_store, item) for item in items))
    assert sizes == [MAX_BATCH, 1]
    assert all(isinstance(result, Redeemed) for result in results)


async def test_a_bad_item_fails_alone(sqlite_store: Store) -> None:
    batcher = RedeemBatcher()
    good, bad = keyed("j1"), keyed("j2", subject="x" * 10_000)
    results = await asyncio.gather(
        batcher.redeem(sqlite_store, good),
        batcher.redeem(sqlite_store, bad),
        return_exceptions=True,
    )
    assert isinstance(results[0], Redeemed)
    assert isinstance(results[1], StoreInputError)


class LockedStore:
    """A store whose write lock is always taken for in-place calls (fault injection)."""

    can_run_now = True

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.threads: list[str] = []

    def redeem_idempotent_batch(
        self, items: Sequence[KeyedRedemption], *, wait: bool = True
    ) -> list[KeyedOutcome | StoreInputError]:
        if self.error is not None:
            raise self.error
        if not wait:
            raise WouldBlock()
        self.threads.append(threading.current_thread().name)
        return [AlreadyRedeemed(redemption=None) for _ in items]  # type: ignore[arg-type]


async def test_a_taken_lock_sends_the_batch_to_a_worker_thread() -> None:
    store = LockedStore()
    batcher = RedeemBatcher()
    results = await asyncio.gather(
        *(batcher.redeem(store, keyed(f"j{i}")) for i in range(3))  # type: ignore[arg-type]
    )
    assert len(results) == 3
    assert len(store.threads) == 1
    assert store.threads[0] != threading.current_thread().name


async def test_a_failed_transaction_fails_every_caller_of_the_batch() -> None:
    store = LockedStore(StoreError("sqlite: disk I/O error"))
    batcher = RedeemBatcher()
    results = await asyncio.gather(
        *(batcher.redeem(store, keyed(f"j{i}")) for i in range(3)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert all(isinstance(result, StoreError) for result in results)


def record_batches(store: Store) -> list[list[str]]:
    """The jtis of every batch the store is given, in order."""
    batches: list[list[str]] = []
    original = store.redeem_idempotent_batch

    def recorded(
        items: Sequence[KeyedRedemption | RedemptionRequest], *, wait: bool = True
    ) -> list[KeyedOutcome | StoreInputError]:
        batches.append([i.request.jti if isinstance(i, KeyedRedemption) else i.jti for i in items])
        return original(items, wait=wait)

    store.redeem_idempotent_batch = recorded  # type: ignore[method-assign]
    return batches


async def test_on_postgresql_a_batch_charges_one_budget_row(store_url: str) -> None:
    """Mixed campaigns: one (kind, campaign) per batch on PostgreSQL, all in one on SQLite."""
    with open_store(store_url, render=render) as store:
        store.set_budget("points", "a", 100, unit="points")
        store.set_budget("points", "b", 100, unit="points")
        batches = record_batches(store)
        batcher = RedeemBatcher(max_in_flight=1)
        items: list[KeyedRedemption | RedemptionRequest] = [
            keyed("a1", campaign="a"),
            request("b1", campaign="b"),  # unkeyed ones are grouped the same way
            keyed("a2", campaign="a"),
            keyed("t1", kind="trial_extension", unit="days", campaign="a"),
            request("b2", campaign="b"),
            keyed("a3", campaign="a"),
        ]
        results = await asyncio.gather(*(batcher.redeem(store, item) for item in items))
        assert all(isinstance(result, Redeemed) for result in results)
        if store.backend == "sqlite":
            assert batches == [["a1", "b1", "a2", "t1", "b2", "a3"]]
        else:
            assert batches == [["a1", "a2", "a3"], ["b1", "b2"], ["t1"]]
        budgets = {(b.kind, b.campaign): b.remaining for b in store.budgets()}
        assert budgets == {("points", "a"): 97, ("points", "b"): 98}


class HeldStore:
    """A store that cannot run in place (as PostgreSQL), whose batches wait for a release."""

    can_run_now = False

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sizes: list[int] = []

    def redeem_idempotent_batch(
        self, items: Sequence[KeyedRedemption], *, wait: bool = True
    ) -> list[KeyedOutcome | StoreInputError]:
        self.sizes.append(len(items))
        assert self.release.wait(10)
        return [AlreadyRedeemed(redemption=None) for _ in items]  # type: ignore[arg-type]


async def settle(turns: int = 20) -> None:
    """Let the loop and the worker threads run a while (for what must *not* happen)."""
    for _ in range(turns):
        await asyncio.sleep(0.01)


async def until(check: Callable[[], bool]) -> None:
    """Wait for what must happen, however slow the machine (10 s at most)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_next_to_a_running_batch_a_new_one_waits_for_company() -> None:
    store = HeldStore()
    batcher = RedeemBatcher(max_in_flight=3)
    first = asyncio.ensure_future(batcher.redeem(store, keyed("j0")))  # type: ignore[arg-type]
    await until(lambda: store.sizes == [1])  # nothing running: at once, even alone
    few = [
        asyncio.ensure_future(batcher.redeem(store, keyed(f"j{i}")))  # type: ignore[arg-type]
        for i in range(1, JOIN_AT_LEAST)
    ]
    await settle()
    assert store.sizes == [1]  # fewer than JOIN_AT_LEAST next to a running batch: they wait
    more = asyncio.ensure_future(batcher.redeem(store, keyed("jn")))  # type: ignore[arg-type]
    await until(lambda: store.sizes == [1, JOIN_AT_LEAST])
    store.release.set()
    await asyncio.gather(first, *few, more)
    assert sum(store.sizes) == 1 + JOIN_AT_LEAST


async def test_a_lone_redemption_waits_only_until_the_running_batch_ends() -> None:
    store = HeldStore()
    batcher = RedeemBatcher(max_in_flight=3)
    first = asyncio.ensure_future(batcher.redeem(store, keyed("j0")))  # type: ignore[arg-type]
    await until(lambda: store.sizes == [1])
    lone = asyncio.ensure_future(batcher.redeem(store, keyed("j1")))  # type: ignore[arg-type]
    await settle()
    assert store.sizes == [1]
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, lone), 10)
    assert store.sizes == [1, 1]
