"""Races and crashes: exactly once under threads, processes and SIGKILL, both back ends.

No sleeps: threads start together on a barrier, and the crash test kills the worker
after it has *reported* a number of redemptions, wherever it happens to be then.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import pytest

from server_stub.store import (
    AlreadyRedeemed,
    BudgetExhausted,
    InventoryExhausted,
    KeyedRedemption,
    LedgerEvent,
    New,
    Redeemed,
    RedeemOutcome,
    Store,
    StoredResponse,
    UserCap,
    UserCapReached,
    WouldBlock,
    open_store,
)
from tests.support.store_support import redeem_all, redeem_and_report, request, sqlite_path

T = TypeVar("T")
SPAWN = multiprocessing.get_context("spawn")


def race(threads: int, tasks: list[Callable[[], T]]) -> list[T]:
    """Run the tasks on ``threads`` threads, all released at once."""
    barrier = threading.Barrier(threads)

    def start() -> None:
        barrier.wait()

    with ThreadPoolExecutor(threads, initializer=start) as pool:
        return list(pool.map(lambda task: task(), tasks))


def ledger_jtis(store: Store, event: LedgerEvent = LedgerEvent.REDEEMED) -> list[str | None]:
    jtis: list[str | None] = []
    cursor: int | None = None
    while True:
        page = store.ledger(after=cursor, limit=1000)
        jtis.extend(entry.jti for entry in page.entries if entry.event == event)
        if page.next_cursor is None:
            return jtis
        cursor = page.next_cursor


def test_many_threads_per_jti_redeem_each_exactly_once(store: Store) -> None:
    store.set_budget("points", "incident-1", 1000, unit="points")
    jtis = [f"j{i}" for i in range(20)]
    tasks = [lambda jti=jti: store.redeem(request(jti, amount=3)) for jti in jtis * 6]
    outcomes = race(8, tasks)
    wins = [o.redemption for o in outcomes if isinstance(o, Redeemed)]
    assert sorted(r.jti for r in wins) == sorted(jtis)
    first = {r.jti: r.id for r in wins}
    for outcome in outcomes:
        assert isinstance(outcome, Redeemed | AlreadyRedeemed)
        assert outcome.redemption.id == first[outcome.redemption.jti]
    assert store.budget("points", "incident-1").remaining == 1000 - 3 * 20  # type: ignore[union-attr]
    assert sorted(ledger_jtis(store)) == sorted(jtis)  # type: ignore[type-var]


def test_a_contended_budget_never_goes_negative(store: Store) -> None:
    store.set_budget("points", "incident-1", 10, unit="points")
    outcomes = race(8, [lambda i=i: store.redeem(request(f"j{i}")) for i in range(30)])
    kinds = collections.Counter(type(o) for o in outcomes)
    assert kinds == {Redeemed: 10, BudgetExhausted: 20}
    assert store.budget("points", "incident-1").remaining == 0  # type: ignore[union-attr]


def keyed(jti: str, **fields: object) -> KeyedRedemption:
    return KeyedRedemption(request(jti, **fields), "app", "key-" + jti, "fp-" + jti)


def render(outcome: RedeemOutcome) -> StoredResponse:
    return StoredResponse(201 if isinstance(outcome, Redeemed) else 409, b"{}")


def test_contended_batches_spend_a_budget_exactly(store_url: str) -> None:
    # On PostgreSQL each batch counts on the budget it read and charges it once, last:
    # batches that read the same remainder find it moved and run again under the lock.
    with open_store(store_url, render=render) as store:
        store.set_budget("points", "*", 25, unit="points")
        batches = [[keyed(f"b{b}-{i}", amount=2) for i in range(6)] for b in range(8)]
        results = race(
            8, [lambda batch=batch: store.redeem_idempotent_batch(batch) for batch in batches]
        )
        outcomes = [outcome for batch in results for outcome in batch]
        kinds = collections.Counter(type(o) for o in outcomes)
        assert kinds == {Redeemed: 12, BudgetExhausted: 36}
        assert store.budget("points", "*").remaining == 1  # type: ignore[union-attr]
        assert len(ledger_jtis(store)) == 12


@pytest.mark.postgres
def test_a_budget_spent_while_a_batch_counted_on_it_is_decided_again_under_the_lock(
    store_url: str,
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("the per-batch budget charge is the PostgreSQL path")
    import psycopg

    with open_store(store_url, render=render) as store:
        store.set_budget("points", "incident-1", 300, unit="points")
        with psycopg.connect(store_url) as other:
            # Another transaction spends 150 and holds the row: the batch reads 300
            # (its unlocked read sees only what is committed), counts 200 + 100 on it
            # (and refuses the 50), and its charge of 300 waits on that row lock.
            other.execute(
                "UPDATE budgets SET remaining = remaining - 150 WHERE campaign = 'incident-1'"
            )
            with ThreadPoolExecutor(1) as pool:
                batch = [keyed(f"m{i}", amount=amount) for i, amount in enumerate((200, 100, 50))]
                running = pool.submit(store.redeem_idempotent_batch, batch)
                deadline = time.monotonic() + 30
                with psycopg.connect(store_url, autocommit=True) as watcher:
                    while not watcher.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%errdiscount_charge_budgets%'"
                    ).fetchone():
                        assert not running.done(), running.result()
                        assert time.monotonic() < deadline, "the charge never waited on the row"
                other.commit()  # 150 left: the charge no longer fits
                outcomes = running.result(timeout=30)
        # Decided again under the lock, on the 150 really left: the first item is
        # refused (its subtransaction undone, which is why the rows are locked up front,
        # outside every item) and the two after it count on the still-locked row.
        assert [type(o) for o in outcomes] == [BudgetExhausted, Redeemed, Redeemed]
        assert outcomes[0].remaining == 150  # type: ignore[union-attr]
        assert store.budget("points", "incident-1").remaining == 0  # type: ignore[union-attr]
        assert sorted(ledger_jtis(store)) == ["m1", "m2"]  # type: ignore[type-var]
        # Each outcome was stored under its key: a retry replays it.
        again = store.redeem_idempotent_batch(batch)
        assert [o.status for o in again] == [409, 201, 201]  # type: ignore[union-attr]


def test_each_code_is_handed_out_once(store: Store) -> None:
    codes = [f"CODE-{i}" for i in range(10)]
    store.load_codes("coupon", codes)
    outcomes = race(
        8, [lambda i=i: store.redeem(request(f"j{i}", kind="coupon")) for i in range(25)]
    )
    handed = [o.redemption.grant.coupon_code for o in outcomes if isinstance(o, Redeemed)]
    assert sorted(handed) == sorted(codes)  # type: ignore[type-var]
    assert sum(isinstance(o, InventoryExhausted) for o in outcomes) == 15
    assert store.code_pool("coupon").remaining == 0  # type: ignore[union-attr]


def test_a_contended_cap_admits_exactly_its_maximum(store: Store) -> None:
    store.set_user_cap(UserCap(scope="*", max_redemptions=3, period=timedelta(days=1)))
    outcomes = race(
        8, [lambda i=i: store.redeem(request(f"j{i}", subject="eve")) for i in range(12)]
    )
    kinds = collections.Counter(type(o) for o in outcomes)
    assert kinds == {Redeemed: 3, UserCapReached: 9}


def test_one_idempotency_key_is_claimed_once(store: Store) -> None:
    outcomes = race(8, [lambda: store.begin_idempotent("app", "k", "fp") for _ in range(16)])
    assert sum(isinstance(o, New) for o in outcomes) == 1


@pytest.mark.slow
def test_several_processes_redeem_each_jti_exactly_once(store_url: str) -> None:
    with open_store(store_url) as store:
        store.set_budget("points", "incident-1", 10_000, unit="points")
    jtis = [f"p{i}" for i in range(40)]
    with SPAWN.Pool(3) as pool:
        results = pool.starmap(redeem_all, [(store_url, jtis, 4, 5)] * 3)
    flat = [item for chunk in results for item in chunk]
    assert len(flat) == 3 * 4 * len(jtis)
    winners = collections.Counter(jti for jti, outcome, _ in flat if outcome == "Redeemed")
    assert winners == dict.fromkeys(jtis, 1)
    assert len({(jti, rid) for jti, _, rid in flat}) == len(jtis)  # all agree on the id
    with open_store(store_url) as store:
        assert store.budget("points", "incident-1").remaining == 10_000 - 5 * 40  # type: ignore[union-attr]
        assert sorted(ledger_jtis(store)) == sorted(jtis)  # type: ignore[type-var]


@pytest.mark.slow
def test_sigkill_mid_load_loses_no_reported_redemption_and_doubles_none(store_url: str) -> None:
    with open_store(store_url) as store:
        store.set_budget("points", "incident-1", 1_000_000, unit="points")
    receiver, sender = SPAWN.Pipe(duplex=False)
    worker = SPAWN.Process(target=redeem_and_report, args=(store_url, "k", 100_000, sender))
    worker.start()
    sender.close()
    reported: list[str] = []
    while len(reported) < 40:
        jti = receiver.recv()
        assert jti is not None, "the worker finished before it was killed"
        reported.append(jti)
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert worker.exitcode == -signal.SIGKILL
    # Whatever was in the pipe after the kill was also reported as done.
    while receiver.poll():
        try:
            reported.append(receiver.recv())
        except EOFError:
            break

    if store_url.startswith("sqlite:///"):
        check = sqlite3.connect(sqlite_path(store_url))
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()
    with open_store(store_url) as store:
        in_ledger = collections.Counter(ledger_jtis(store))
        assert all(count == 1 for count in in_ledger.values())
        assert set(reported) <= set(in_ledger)
        # Every committed redemption is in the ledger and the budget, and nothing else.
        committed = [j for j in in_ledger if store.redemption_by_jti(j or "") is not None]
        assert len(committed) == len(in_ledger)
        spent = 1_000_000 - store.budget("points", "incident-1").remaining  # type: ignore[union-attr]
        assert spent == 2 * len(in_ledger)
        # Restarted, the load finds every reported jti already redeemed.
        for jti in reported:
            assert isinstance(
                store.redeem(request(jti, amount=2, subject="crash")), AlreadyRedeemed
            )


# -- wait=False: run in place only if the write lock is free ----------------------------


def test_without_waiting_a_free_lock_redeems_in_place(tmp_path: object) -> None:
    def render(outcome: object) -> StoredResponse:
        return StoredResponse(201, b"{}")

    with open_store(f"sqlite:///{tmp_path}/now.db", render=render) as store:
        assert store.can_run_now
        assert isinstance(store.redeem(request("j-now"), wait=False), Redeemed)
        outcome = store.redeem_idempotent(
            request("j-now-2"),
            scope="s",
            key="k",
            fingerprint="f",
            wait=False,
        )
        assert isinstance(outcome, Redeemed)
        assert isinstance(store.redeem(request("j-now"), wait=False), AlreadyRedeemed)


def test_without_waiting_a_lock_held_by_another_process_refuses_at_once(
    tmp_path: object,
) -> None:
    url = f"sqlite:///{tmp_path}/busy.db"
    with open_store(url) as store:
        # Another connection stands for another process holding the write lock; the
        # store's busy timeout (10 s) would make a waiting call sleep on it.
        other = sqlite3.connect(sqlite_path(url), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(WouldBlock):
                store.redeem(request("j-busy"), wait=False)
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Nothing of the refused call was committed; the same call succeeds afterwards.
        assert store.redemption_by_jti("j-busy") is None
        assert isinstance(store.redeem(request("j-busy"), wait=False), Redeemed)


def test_without_waiting_a_lock_held_by_another_thread_refuses_at_once(
    tmp_path: object,
) -> None:
    with open_store(f"sqlite:///{tmp_path}/thread.db") as store:
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            def work(tx: object) -> None:
                holding.set()
                release.wait()

            store._dialect.run(work, write=True)  # type: ignore[arg-type]

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            holding.wait()
            with pytest.raises(WouldBlock):
                store.redeem(request("j-thread"), wait=False)
        finally:
            release.set()
            holder.join()
        assert store.redemption_by_jti("j-thread") is None
        # A waiting call after a refused one uses the normal busy timeout again.
        assert isinstance(store.redeem(request("j-thread")), Redeemed)


def test_only_sqlite_runs_in_place(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.can_run_now == (store.backend == "sqlite")
        if store.backend == "postgresql":  # network round trips never run on the loop
            with pytest.raises(WouldBlock):
                store.redeem(request("j-pg-now"), wait=False)
            assert store.redemption_by_jti("j-pg-now") is None
