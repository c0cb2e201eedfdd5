"""The retention worker: prune old events, rollups and delivered outbox events, hourly.

Raw events (call and outcome events) older than ``--event-retention-days`` (default
30), per-minute rollups older than ``--rollup-retention-days`` (default 400) and
per-day rollups older than ``--daily-rollup-retention-days`` (default 1825) are deleted
by `Store.prune_events` (events in chunks, so ingestion never waits long); outbox events
delivered more than ``--outbox-retention-days`` (default 30) ago, with their per-sink
deliveries, by `Store.prune_outbox` (dead letters stay until requeued; docs/reach.md).
The first prune runs right after the server starts, then every `PRUNE_INTERVAL_SECONDS`.
A failed round is logged and tried again at the next; it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Final

import attrs

from server_stub.store import PruneResult, Store, StoreError

__all__ = ["DEFAULT_OUTBOX_RETENTION_DAYS", "PRUNE_INTERVAL_SECONDS", "prune_forever", "prune_once"]

log = logging.getLogger("server_stub.retention")

PRUNE_INTERVAL_SECONDS: Final = 3600.0
DEFAULT_OUTBOX_RETENTION_DAYS: Final = 30


def _prune(
    store: Store,
    event_retention_days: int,
    rollup_retention_days: int,
    daily_rollup_retention_days: int | None,
    outbox_retention_days: int,
) -> PruneResult:
    result = store.prune_events(
        event_retention=timedelta(days=event_retention_days),
        rollup_retention=timedelta(days=rollup_retention_days),
        daily_rollup_retention=(
            None
            if daily_rollup_retention_days is None
            else timedelta(days=daily_rollup_retention_days)
        ),
    )
    outbox = store.prune_outbox(retention=timedelta(days=outbox_retention_days))
    return attrs.evolve(result, outbox_events=outbox)


async def prune_once(
    store: Store,
    *,
    event_retention_days: int,
    rollup_retention_days: int,
    outbox_retention_days: int = DEFAULT_OUTBOX_RETENTION_DAYS,
    daily_rollup_retention_days: int | None = None,
) -> PruneResult | None:
    """One prune on a worker thread; None (and a warning in the log) if the database failed."""
    try:
        result = await asyncio.to_thread(
            _prune,
            store,
            event_retention_days,
            rollup_retention_days,
            daily_rollup_retention_days,
            outbox_retention_days,
        )
    except StoreError:
        log.warning("pruning old events failed; retrying next round", exc_info=True)
        return None
    if (
        result.events
        or result.outcomes
        or result.rollups
        or result.user_minutes
        or result.daily_rollups
        or result.outbox_events
    ):
        log.info(
            "pruned %d events, %d outcome events, %d rollups, %d per-user minutes,"
            " %d daily rollups, %d delivered outbox events",
            result.events,
            result.outcomes,
            result.rollups,
            result.user_minutes,
            result.daily_rollups,
            result.outbox_events,
        )
    return result


async def prune_forever(
    store: Store,
    *,
    event_retention_days: int,
    rollup_retention_days: int,
    outbox_retention_days: int = DEFAULT_OUTBOX_RETENTION_DAYS,
    daily_rollup_retention_days: int | None = None,
    interval: float = PRUNE_INTERVAL_SECONDS,
) -> None:
    """Prune now, then every ``interval`` seconds, until cancelled."""
    while True:
        await prune_once(
            store,
            event_retention_days=event_retention_days,
            rollup_retention_days=rollup_retention_days,
            outbox_retention_days=outbox_retention_days,
            daily_rollup_retention_days=daily_rollup_retention_days,
        )
        await asyncio.sleep(interval)
