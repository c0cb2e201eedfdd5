"""The retention worker: prune old events and rollups, hourly, in the background.

Raw events (call and outcome events) older than ``--event-retention-days`` (default
30) and per-minute rollups older than ``--rollup-retention-days`` (default 400) are
deleted by `Store.prune_events` (events in chunks, so ingestion never waits long). The
first prune runs right after the server starts, then every `PRUNE_INTERVAL_SECONDS`. A
failed round is logged and tried again at the next; it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Final

from server_stub.store import PruneResult, Store, StoreError

__all__ = ["PRUNE_INTERVAL_SECONDS", "prune_forever", "prune_once"]

log = logging.getLogger("server_stub.retention")

PRUNE_INTERVAL_SECONDS: Final = 3600.0


async def prune_once(
    store: Store, *, event_retention_days: int, rollup_retention_days: int
) -> PruneResult | None:
    """One prune on a worker thread; None (and a warning in the log) if the database failed."""
    try:
        result = await asyncio.to_thread(
            store.prune_events,
            event_retention=timedelta(days=event_retention_days),
            rollup_retention=timedelta(days=rollup_retention_days),
        )
    except StoreError:
        log.warning("pruning old events failed; retrying next round", exc_info=True)
        return None
    if result.events or result.rollups or result.user_minutes or result.outcomes:
        log.info(
            "pruned %d events, %d outcome events, %d rollups, %d per-user minutes",
            result.events,
            result.outcomes,
            result.rollups,
            result.user_minutes,
        )
    return result


async def prune_forever(
    store: Store,
    *,
    event_retention_days: int,
    rollup_retention_days: int,
    interval: float = PRUNE_INTERVAL_SECONDS,
) -> None:
    """Prune now, then every ``interval`` seconds, until cancelled."""
    while True:
        await prune_once(
            store,
            event_retention_days=event_retention_days,
            rollup_retention_days=rollup_retention_days,
        )
        await asyncio.sleep(interval)
