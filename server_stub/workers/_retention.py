"""The retention worker: prune old call events and rollups, hourly, in the background.

Raw events older than ``--event-retention-days`` (default 30) and per-minute rollups
older than ``--rollup-retention-days`` (default 400) and per-day rollups older than
``--daily-rollup-retention-days`` (default 1825) are deleted by `Store.prune_events`
(events in chunks, so ingestion never waits long). The first prune runs right after the
server starts, then every `PRUNE_INTERVAL_SECONDS`. A failed round is logged and tried
again at the next; it never stops the server.
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
    store: Store,
    *,
    event_retention_days: int,
    rollup_retention_days: int,
    daily_rollup_retention_days: int | None = None,
) -> PruneResult | None:
    """One prune on a worker thread; None (and a warning in the log) if the database failed."""
    try:
        result = await asyncio.to_thread(
            store.prune_events,
            event_retention=timedelta(days=event_retention_days),
            rollup_retention=timedelta(days=rollup_retention_days),
            daily_rollup_retention=(
                None
                if daily_rollup_retention_days is None
                else timedelta(days=daily_rollup_retention_days)
            ),
        )
    except StoreError:
        log.warning("pruning old events failed; retrying next round", exc_info=True)
        return None
    if result.events or result.rollups or result.user_minutes or result.daily_rollups:
        log.info(
            "pruned %d events, %d rollups, %d per-user minutes, %d daily rollups",
            result.events,
            result.rollups,
            result.user_minutes,
            result.daily_rollups,
        )
    return result


async def prune_forever(
    store: Store,
    *,
    event_retention_days: int,
    rollup_retention_days: int,
    daily_rollup_retention_days: int | None = None,
    interval: float = PRUNE_INTERVAL_SECONDS,
) -> None:
    """Prune now, then every ``interval`` seconds, until cancelled."""
    while True:
        await prune_once(
            store,
            event_retention_days=event_retention_days,
            rollup_retention_days=rollup_retention_days,
            daily_rollup_retention_days=daily_rollup_retention_days,
        )
        await asyncio.sleep(interval)
