"""Value classes of the outbox: events, claims, delivery results, webhook endpoints."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


class OutboxStatus(enum.StrEnum):
    """Where an event is: waiting, leased by a dispatcher, acknowledged, or dead-lettered."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


@attrs.frozen
class OutboxEvent:
    """One event as stored; ``delivered_to`` lists the sinks that acknowledged it."""

    id: str
    type: str
    payload: Mapping[str, Any] = attrs.field(hash=False)
    created_at: datetime
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None
    delivered_to: tuple[str, ...] = ()


@attrs.frozen
class ClaimedEvent:
    """An event leased to one dispatcher until ``lease_until``.

    ``body`` is the stored payload, byte for byte (what is signed and sent);
    ``attempts`` counts this attempt; ``delivered_to`` are the sinks already done.
    """

    id: str
    type: str
    body: bytes = attrs.field(repr=False)
    attempts: int
    lease_until: datetime
    owner: str
    delivered_to: frozenset[str] = frozenset()


@attrs.frozen
class DeliveryResult:
    """What one attempt at one event came to, for `Store.finish_deliveries`.

    ``delivered``: sinks that acknowledged now. ``retry_at`` None and ``error`` set:
    dead letter (``failed``). ``error`` None: every sink has it (``delivered``).
    """

    event_id: str
    owner: str
    delivered: tuple[str, ...] = ()
    error: str | None = None
    retry_at: datetime | None = None


@attrs.frozen
class SinkHealth:
    """A sink's failure streak and whether it was disabled (410, or failing for 5 days)."""

    sink: str
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


@attrs.frozen
class WebhookEndpoint:
    """An endpoint registered over the admin API; empty ``event_types``: every type."""

    id: str
    url: str
    secrets: tuple[str, ...] = attrs.field(repr=False)
    event_types: tuple[str, ...]
    created_at: datetime
    health: SinkHealth | None = None


@attrs.frozen
class Requeued:
    event_id: str


@attrs.frozen
class EventNotFound:
    event_id: str


@attrs.frozen
class NotFailed:
    """Only dead-lettered (``failed``) events can be requeued."""

    event_id: str
    status: OutboxStatus


RequeueOutcome = Requeued | EventNotFound | NotFailed
