"""Group commit of redemptions on SQLite: one transaction, one fsync, many requests.

On SQLite with ``synchronous=FULL`` most of a redemption's cost is its commit (WAL
write and fsync). Redemptions that reach the store in the same turn of the event
loop are therefore run together by `Store.redeem_idempotent_batch`: in arrival order,
each exactly as it would run alone, in one transaction. Every caller is answered only
after that shared commit returned, so a reply still means "durable"; if the commit
fails, every caller of the batch gets the error and nothing of any of them is kept.

The batch runs in place on the loop when the write lock is free (as a single
redemption did), else on a worker thread; at most `MAX_BATCH` items per transaction.

Keyed and unkeyed redemptions share the batches (an unkeyed item is a bare
`RedemptionRequest`: `Store.redeem` instead of `Store.redeem_idempotent`).

On PostgreSQL (a store that cannot run in place) every batch goes to a worker thread,
and at most ``max_in_flight`` batches run at once (a new one next to a running one
only once `JOIN_AT_LEAST` redemptions wait): while they do, new arrivals wait and join
the next batch, so under load the batches grow instead of the number of
transactions contending for the budget row (group commit, as on SQLite). There a batch
also holds the redemptions of one ``(kind, campaign)`` only: that pair decides the one
budget row its items charge, so a transaction never holds one budget row while it
waits for another. Batches mixing campaigns with their own budgets lock them in item
order, and two such batches in flight deadlock (PostgreSQL detects it after a second
and retries one): measured in process, 4 budget rows mixed in every batch ran 7 to
20 times slower than the same rows grouped (docs/redemption.md, "The hot budget row").
The other pending items keep their order and go in the next batches; on SQLite, one
writer at a time, a batch takes every campaign (one commit, one fsync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from server_stub.store import (
    KeyedOutcome,
    KeyedRedemption,
    RedemptionRequest,
    Store,
    StoreInputError,
    WouldBlock,
)

#: items per transaction at most: bounds how long one batch holds the loop and lock
MAX_BATCH = 64
#: on PostgreSQL, while a batch runs, the next starts only once this many wait (or when
#: a batch ends): started at once, a third of the batches held one or two items, each
#: paying a whole transaction (PostgreSQL's commit_delay / commit_siblings, in the
#: batcher); measured, 1.03x of starting at once, 8 no better
JOIN_AT_LEAST = 4

_Item = KeyedRedemption | RedemptionRequest
_Waiter = tuple[_Item, "asyncio.Future[KeyedOutcome]"]


class RedeemBatcher:
    """Collects redemptions for one store and commits them in groups."""

    def __init__(
        self,
        *,
        # 3, measured (PostgreSQL, 1 process, 32 connections): 1 ran at 0.85x of 2, 3 at
        # 1.05x, 4 no better; more batches wait on the budget row rather than run.
        max_in_flight: int = 3,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._pending: list[_Waiter] = []
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()
        self._threaded: set[asyncio.Task[None]] = set()
        self._max_in_flight = max(1, max_in_flight)
        self._on_batch = on_batch

    async def redeem(self, store: Store, item: _Item) -> KeyedOutcome:
        """`Store.redeem_idempotent` (or, unkeyed, `Store.redeem`), committed with its neighbours.

        Raises:
            StoreInputError: this item's values are out of range (others unaffected).
            StoreError: the batch's transaction failed; nothing of it was committed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[KeyedOutcome] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            # call_soon, not now: requests already read in this turn join the batch.
            self._scheduled = True
            loop.call_soon(self._flush, store)
        return await future

    def _flush(self, store: Store) -> None:
        self._scheduled = False
        if not store.can_run_now and len(self._threaded) >= self._max_in_flight:
            return  # a running batch's end flushes again; arrivals meanwhile join up
        if not store.can_run_now and self._threaded and len(self._pending) < JOIN_AT_LEAST:
            return  # likewise: no batch of one or two next to a running one
        # A caller cancelled before its turn is dropped: nothing was attempted for it.
        pending = [waiter for waiter in self._pending if not waiter[1].done()]
        if store.can_run_now:
            batch, self._pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
        else:
            batch, self._pending = _one_budget_row(pending)
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, store)
        if not batch:
            return
        if self._on_batch is not None:
            self._on_batch(len(batch))
        items = [item for item, _ in batch]
        if not store.can_run_now:
            task = asyncio.ensure_future(self._in_thread(store, batch))
            self._threaded.add(task)
            task.add_done_callback(lambda done: self._batch_done(done, store))
            return
        try:
            results = store.redeem_idempotent_batch(items, wait=False)
        except WouldBlock:
            task = asyncio.ensure_future(self._in_thread(store, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            return
        except Exception as exc:
            _fail(batch, exc)
            return
        _deliver(batch, results)

    def _batch_done(self, task: asyncio.Task[None], store: Store) -> None:
        self._threaded.discard(task)
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, store)

    async def _in_thread(self, store: Store, batch: list[_Waiter]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await run_in_threadpool(store.redeem_idempotent_batch, items, wait=True)
        except Exception as exc:
            _fail(batch, exc)
            return
        _deliver(batch, results)


def _budget_row(item: _Item) -> tuple[str, str]:
    request = item.request if isinstance(item, KeyedRedemption) else item
    return request.kind, request.campaign


def _one_budget_row(pending: list[_Waiter]) -> tuple[list[_Waiter], list[_Waiter]]:
    """The first item's ``(kind, campaign)`` batch (at most `MAX_BATCH`), and the rest."""
    if not pending:
        return [], []
    row = _budget_row(pending[0][0])
    batch: list[_Waiter] = []
    rest: list[_Waiter] = []
    for waiter in pending:
        if len(batch) < MAX_BATCH and _budget_row(waiter[0]) == row:
            batch.append(waiter)
        else:
            rest.append(waiter)
    return batch, rest


def _deliver(batch: list[_Waiter], results: list[KeyedOutcome | StoreInputError]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():
            continue
        if isinstance(result, StoreInputError):
            future.set_exception(result)
        else:
            future.set_result(result)


def _fail(batch: list[_Waiter], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
