"""The outbox half of `Store`: claiming and finishing deliveries, endpoints, reminders.

A mixin so the outbox keeps to its own module; `Store` inherits it. Every method is
one transaction, like the rest of `Store`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from errdiscount_sdk.wire import EVENT_TYPES

from . import _outbox
from ._base import MAX_ID, MAX_NAME, MAX_PAGE, Dialect, Tx, check_amount, check_text
from ._errors import StoreInputError
from ._outbox_models import (
    ClaimedEvent,
    DeliveryResult,
    OutboxEvent,
    OutboxStatus,
    RequeueOutcome,
    SinkHealth,
    WebhookEndpoint,
)

T = TypeVar("T")

MAX_URL = 2048
MAX_SECRETS_PER_ENDPOINT = 4
MAX_BATCH = 500


class OutboxMixin:
    _dialect: Dialect

    def _now(self) -> int:  # pragma: no cover - Store defines it
        raise NotImplementedError

    def _write(self, work: Callable[[Tx], T]) -> T:
        return self._dialect.run(work, write=True)

    def _read(self, work: Callable[[Tx], T]) -> T:
        return self._dialect.run(work, write=False)

    def claim_events(
        self, owner: str, *, limit: int = 50, lease: timedelta = timedelta(seconds=30)
    ) -> list[ClaimedEvent]:
        """Lease up to ``limit`` due events to ``owner`` (skipping rows others hold)."""
        check_text("owner", owner, MAX_ID)
        check_amount("limit", limit)
        now = self._now()
        until = now + int(lease / timedelta(microseconds=1))
        skip_locked = self._dialect.name == "postgresql"
        return self._write(
            lambda tx: _outbox.claim(
                tx,
                now=now,
                lease_until=until,
                owner=owner,
                limit=min(limit, MAX_BATCH),
                skip_locked=skip_locked,
            )
        )

    def settle_unrouted(self, *, limit: int = MAX_BATCH) -> int:
        """Mark up to ``limit`` due events delivered, to nobody: for when no sink exists.

        What `claim_events` and `finish_deliveries` come to for an event without a
        sink (one attempt, ``delivered``, no acknowledgement), in one statement instead
        of a claim and a finish per round: with no webhook configured or registered,
        that round trip was a tenth of a busy server's work. Rows another dispatcher
        holds are skipped, as by `claim_events`. Returns how many were settled.
        """
        check_amount("limit", limit)
        now = self._now()
        skip_locked = self._dialect.name == "postgresql"
        return self._write(
            lambda tx: _outbox.settle_unrouted(
                tx, now=now, limit=min(limit, MAX_BATCH), skip_locked=skip_locked
            )
        )

    def finish_deliveries(self, results: Sequence[DeliveryResult]) -> int:
        """Record acknowledgements and new statuses; returns how many leases were still held."""
        now = self._now()
        return self._write(lambda tx: _outbox.finish(tx, results, now=now))

    def outbox_events(
        self, *, status: OutboxStatus | None = None, after: str | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        """Events in id (time) order, optionally of one status; ``after`` is the last id seen."""
        if after is not None:
            check_text("after", after, MAX_ID)
        check_amount("limit", limit)
        return self._read(
            lambda tx: _outbox.events(tx, status=status, after=after, limit=min(limit, MAX_PAGE))
        )

    def outbox_event(self, event_id: str) -> OutboxEvent | None:
        check_text("event id", event_id, MAX_ID)
        return self._read(lambda tx: _outbox.event(tx, event_id))

    def requeue_event(self, event_id: str) -> RequeueOutcome:
        """Put a dead-lettered event back (attempts reset, due now)."""
        check_text("event id", event_id, MAX_ID)
        now = self._now()
        return self._write(lambda tx: _outbox.requeue(tx, event_id, now=now))

    def prune_outbox(self, *, retention: timedelta, chunk: int = 1_000) -> int:
        """Delete events delivered more than ``retention`` ago (and their deliveries).

        Dead letters (``failed``) are never pruned by age: each is an event a receiver
        never got, kept until requeued (then delivered, then pruned like the rest).
        Pending and delivering events are never pruned. Deletes ``chunk`` events per
        transaction, so the dispatcher never waits long. Returns how many were deleted.

        Raises:
            StoreInputError: ``retention`` is not positive, or ``chunk`` is out of range.
        """
        if retention <= timedelta(0):
            raise StoreInputError("the outbox retention must be positive")
        check_amount("chunk", chunk)
        cutoff = self._now() - int(retention / timedelta(microseconds=1))
        size = min(chunk, MAX_BATCH)
        deleted = 0
        while True:
            done = self._write(
                lambda tx: _outbox.prune_delivered_chunk(tx, cutoff=cutoff, chunk=size)
            )
            deleted += done
            if done < size:
                return deleted

    def requeue_failed(self) -> int:
        """Put every dead letter back at once (after a receiver is fixed); returns how many."""
        now = self._now()
        return self._write(lambda tx: _outbox.requeue_failed(tx, now=now))

    def grant_acknowledged(self, jti: str) -> bool:
        """True once a sink acknowledged the ``compensation.redeemed`` event of ``jti``."""
        check_text("jti", jti, MAX_ID)
        return self._read(lambda tx: _outbox.grant_acknowledged(tx, jti))

    # -- webhook endpoints, sink health -----------------------------------------------

    def add_webhook_endpoint(
        self, url: str, secrets_: Sequence[str], event_types: Sequence[str] = ()
    ) -> WebhookEndpoint:
        check_text("url", url, MAX_URL)
        if not 1 <= len(secrets_) <= MAX_SECRETS_PER_ENDPOINT:
            raise StoreInputError(f"an endpoint has 1 to {MAX_SECRETS_PER_ENDPOINT} secrets")
        for secret in secrets_:
            check_text("secret", secret, 256)
        for event_type in event_types:
            if event_type not in EVENT_TYPES:
                raise StoreInputError(f"unknown event type {event_type!r}")
        endpoint_id = "we_" + secrets.token_hex(12)
        types = sorted(set(event_types))
        now = self._now()
        return self._write(
            lambda tx: _outbox.add_endpoint(tx, endpoint_id, url, secrets_, types, now=now)
        )

    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        return self._read(_outbox.endpoints)

    def remove_webhook_endpoint(self, endpoint_id: str) -> bool:
        check_text("endpoint id", endpoint_id, MAX_ID)
        return self._write(lambda tx: _outbox.remove_endpoint(tx, endpoint_id))

    def sink_health(self) -> dict[str, SinkHealth]:
        return self._read(_outbox.sink_health)

    def sink_failed(self, sink: str) -> SinkHealth:
        check_text("sink", sink, MAX_ID)
        now = self._now()
        return self._write(lambda tx: _outbox.sink_failed(tx, sink, now=now))

    def sinks_ok(self, sinks: Sequence[str]) -> None:
        def work(tx: Tx) -> None:
            for sink in sinks:
                _outbox.sink_ok(tx, sink)

        if sinks:
            self._write(work)

    def disable_sink(self, sink: str, reason: str) -> None:
        check_text("sink", sink, MAX_ID)
        now = self._now()
        self._write(lambda tx: _outbox.disable_sink(tx, sink, reason, now=now))

    def enable_sink(self, sink: str) -> bool:
        """Forget ``sink``'s failure streak and disabled state; False if it had none.

        For the flag-configured sinks (``cfg_...``); registered endpoints have
        `enable_webhook_endpoint`.
        """
        check_text("sink", sink, MAX_ID)
        return self._write(lambda tx: _outbox.enable_sink(tx, sink))

    def enable_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        """Re-enable a registered endpoint, its failure streak reset; None if unknown.

        Enabling an endpoint that is not disabled only resets its streak (idempotent).
        """
        check_text("endpoint id", endpoint_id, MAX_ID)
        return self._write(lambda tx: _outbox.enable_endpoint(tx, endpoint_id))

    # -- next-login reminders -----------------------------------------------------------

    def mark_reminder_seen(self, jti: str, subject: str) -> bool:
        """Record that ``subject`` saw the reminder of ``jti``; False if it is not theirs."""
        check_text("jti", jti, MAX_ID)
        check_text("subject", subject, MAX_NAME)
        now = self._now()
        return self._write(lambda tx: _outbox.mark_seen(tx, jti, subject, now=now))

    def reminders_seen(self, subject: str) -> set[str]:
        """The jtis whose reminder ``subject`` saw."""
        check_text("subject", subject, MAX_NAME)
        return self._read(lambda tx: _outbox.seen(tx, subject))


__all__ = ["OutboxMixin"]
