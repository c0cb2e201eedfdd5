"""The outbox dispatcher: claims due events and delivers them to every sink, at least once.

Runs as a task inside the server (the app's lifespan) and alone
(``errdiscount-server dispatch``); any number of them may share one database.

Policy:
- Claim a batch (16 events) under a 30 s lease (`Store.claim_events`: ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL, the write lock and the lease on SQLite). A batch is
  delivered in parallel, each event to each of its sinks in parallel, so a batch
  finishes within one request timeout (15 s), inside the lease.
- An event's sinks: the configured ones (``--webhook-url``, ``--amqp-url``) and the
  endpoints registered over the admin API, whose event-type filter accepts it, minus
  those that already acknowledged it (a retry goes only to the sinks still missing).
  No sink at all: the event is delivered to nobody and marked delivered; when no sink
  is configured or registered, a round is that one statement (`Store.settle_unrouted`,
  up to 500 events), run once per poll (1 s) rather than on every wake-up, since no
  receiver waits for them.
- All acknowledged: ``delivered``. Otherwise, after attempt n (1-based), the event is
  due again after ``schedule[n-1]`` seconds ±20 % (the Svix schedule by default:
  5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), or later when a receiver's
  ``Retry-After`` says so (capped at one day); after the last attempt it is ``failed``
  (the dead letter), until requeued.
- Endpoint health: HTTP 410 disables the endpoint at once; an endpoint failing without
  a single success for 5 days is disabled; both are logged as operational events (the
  logger ``server_stub.outbox``). A disabled sink is not called: its events fail and
  end as dead letters, to be requeued once the endpoint is fixed and re-enabled.
- At least once: a dispatcher killed between a delivery and its record delivers that
  event again after the lease; the ``webhook-id`` / ``message_id`` (the outbox id) is
  the same, so receivers drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
import httpx

from server_stub.store import (
    ClaimedEvent,
    DeliveryResult,
    SinkHealth,
    Store,
    StoreError,
    WebhookEndpoint,
)

from ._sinks import Delivered, Failed, Gone, Sink, SinkOutcome, WebhookSink
from ._sinks._webhook import TIMEOUT_SECONDS, WebhookUrlRefused

__all__ = ["SVIX_SCHEDULE", "DispatchConfig", "Dispatcher", "parse_schedule"]

T = TypeVar("T")

log = logging.getLogger("server_stub.outbox")

#: seconds between attempts (Svix's default): 8 attempts over about 27.6 h
SVIX_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_SCHEDULE_STEPS = 50
MAX_STEP_SECONDS = 7 * 86400
MAX_RETRY_AFTER = 86400.0
DISABLE_AFTER = dt.timedelta(days=5)
#: events settled per round when no sink exists (one UPDATE; the store's cap)
UNROUTED_BATCH = 500


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` → ``(5.0, 300.0, 1800.0)``; an empty string: no retries.

    Raises:
        ValueError: not comma-separated numbers from 0 to 7 days, or more than 50.
    """
    if not text.strip():
        return ()
    steps: list[float] = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise ValueError("the retry schedule is comma-separated seconds") from None
        if not 0 <= value <= MAX_STEP_SECONDS:
            raise ValueError("each retry delay is 0 to 604800 seconds")
        steps.append(value)
    if len(steps) > MAX_SCHEDULE_STEPS:
        raise ValueError(f"at most {MAX_SCHEDULE_STEPS} retry delays")
    return tuple(steps)


@attrs.frozen
class DispatchConfig:
    """How the dispatcher paces itself (defaults: the documented policy)."""

    schedule: tuple[float, ...] = SVIX_SCHEDULE
    jitter: float = 0.2
    lease: dt.timedelta = dt.timedelta(seconds=30)
    #: events claimed per round (the outbox anchors' ``LIMIT 50``)
    batch: int = 50
    poll_seconds: float = 1.0
    #: after a wake-up, how long to let more events arrive before claiming: under load
    #: every redemption wakes the dispatcher, and a round per event would take the
    #: store's write lock (SQLite) or a transaction (PostgreSQL) several times per
    #: redemption; a short linger turns that into one round per ~batch of events
    linger_seconds: float = 0.05
    allow_private_webhooks: bool = False


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Delivers the outbox of ``store`` to ``sinks`` plus the registered endpoints."""

    def __init__(
        self,
        store: Callable[[], Store],
        sinks: Sequence[Sink] = (),
        *,
        config: DispatchConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._configured = tuple(sinks)
        self.config = config or DispatchConfig()
        self._rng = rng or random.Random()
        self.owner = _owner()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        )
        self._unrouted = False
        self._registered: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], WebhookSink] = {}

    @property
    def configured_sinks(self) -> tuple[Sink, ...]:
        return self._configured

    def wake(self) -> None:
        """Look for due events now (an event was just written by this process)."""
        self._wake.set()

    async def _db(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(call, *args)

    def _registered_sinks(self, endpoints: Sequence[WebhookEndpoint]) -> list[Sink]:
        found: list[Sink] = []
        for endpoint in endpoints:
            key = (endpoint.id, endpoint.url, endpoint.secrets, endpoint.event_types)
            sink = self._registered.get(key)
            if sink is None:
                try:
                    sink = WebhookSink(
                        endpoint.id,
                        endpoint.url,
                        endpoint.secrets,
                        event_types=endpoint.event_types,
                        allow_private=self.config.allow_private_webhooks,
                        client=self._client,
                    )
                except (WebhookUrlRefused, ValueError):
                    log.warning("webhook endpoint %s is unusable; skipped", endpoint.id)
                    continue
                self._registered[key] = sink
            found.append(sink)
        return found

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many events were claimed."""
        store = self._store()
        self._unrouted = not self._configured and not await self._db(store.webhook_endpoints)
        if self._unrouted:
            return await self._db(lambda: store.settle_unrouted(limit=UNROUTED_BATCH))
        claimed = await self._db(
            lambda: store.claim_events(self.owner, limit=self.config.batch, lease=self.config.lease)
        )
        if not claimed:
            return 0
        endpoints = await self._db(store.webhook_endpoints)
        health = await self._db(store.sink_health)
        sinks = [*self._configured, *self._registered_sinks(endpoints)]
        outcomes = await asyncio.gather(*(self._deliver(event, sinks, health) for event in claimed))
        results = [result for result, _ in outcomes]
        await self._db(store.finish_deliveries, results)
        await self._record_health(store, [pair for _, pairs in outcomes for pair in pairs])
        return len(claimed)

    async def _deliver(
        self, event: ClaimedEvent, sinks: Sequence[Sink], health: dict[str, SinkHealth]
    ) -> tuple[DeliveryResult, list[tuple[str, SinkOutcome]]]:
        targets = [s for s in sinks if s.accepts(event.type) and s.id not in event.delivered_to]
        live = [s for s in targets if _enabled(health.get(s.id))]
        results = await asyncio.gather(*(s.deliver(event.id, event.type, event.body) for s in live))
        pairs = [(sink.id, outcome) for sink, outcome in zip(live, results, strict=True)]
        delivered = tuple(sink_id for sink_id, outcome in pairs if isinstance(outcome, Delivered))
        errors = [
            f"{sink_id}: {outcome.error}"
            for sink_id, outcome in pairs
            if isinstance(outcome, Failed | Gone)
        ]
        errors += [f"{s.id}: disabled" for s in targets if s not in live]
        if not errors:
            return DeliveryResult(event.id, event.owner, delivered), pairs
        waits = [o.retry_after for _, o in pairs if isinstance(o, Failed) and o.retry_after]
        return (
            DeliveryResult(
                event.id,
                event.owner,
                delivered,
                error="; ".join(errors),
                retry_at=self._retry_at(event.attempts, max(waits, default=0.0)),
            ),
            pairs,
        )

    def _retry_at(self, attempts: int, retry_after: float) -> dt.datetime | None:
        schedule = self.config.schedule
        if attempts > len(schedule):
            return None
        jitter = self.config.jitter
        delay = schedule[attempts - 1] * self._rng.uniform(1 - jitter, 1 + jitter)
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)

    async def _record_health(self, store: Store, pairs: Sequence[tuple[str, SinkOutcome]]) -> None:
        ok = sorted({sink for sink, outcome in pairs if isinstance(outcome, Delivered)})
        await self._db(store.sinks_ok, ok)
        failing = {sink for sink, outcome in pairs if isinstance(outcome, Failed)} - set(ok)
        gone = {sink for sink, outcome in pairs if isinstance(outcome, Gone)}
        for sink in sorted(gone):
            await self._db(store.disable_sink, sink, "HTTP 410 Gone")
            log.warning("outbox: sink %s answered 410 Gone and is disabled", sink)
        now = dt.datetime.now(dt.UTC)
        for sink in sorted(failing - gone):
            health = await self._db(store.sink_failed, sink)
            if health.failing_since is not None and now - health.failing_since >= DISABLE_AFTER:
                await self._db(store.disable_sink, sink, "failing for 5 days")
                log.warning("outbox: sink %s failed for 5 days without success; disabled", sink)

    async def run_forever(self) -> None:
        """Deliver until cancelled; store failures are logged and retried next round."""
        while True:
            try:
                claimed = await self.run_once()
            except StoreError:
                log.warning("outbox: the store failed; retrying", exc_info=True)
                claimed = 0
            if claimed >= (UNROUTED_BATCH if self._unrouted else self.config.batch):
                continue
            if self._unrouted:
                # Nobody waits for these events: no round per wake-up, one per poll.
                await asyncio.sleep(self.config.poll_seconds)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                if self.config.linger_seconds:
                    await asyncio.sleep(self.config.linger_seconds)

    async def close(self) -> None:
        for sink in self._configured:
            await sink.close()
        await self._client.aclose()


def _enabled(health: SinkHealth | None) -> bool:
    return health is None or health.disabled_at is None
