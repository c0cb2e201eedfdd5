"""Frozen values of the event store: call and outcome events, ingest and prune results, rollups.

An `EventRecord` is what the ingestion routes hand to the store once an event has been
parsed and redacted (server_stub/domain/_events.py); the store checks sizes again but
trusts the meaning. Rollup keys store an absent dimension as ``""`` (a primary-key
column cannot be NULL on PostgreSQL, and NULLs would never conflict on upsert); reads
give it back as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


@attrs.frozen
class EventRecord:
    """One finished call (after retries), as stored; see docs/events.md for each member.

    ``count`` is how many identical-outcome calls this record stands for (successes are
    aggregated per minute by reporters). ``params`` and ``extensions`` are already
    redacted JSON objects.
    """

    event_id: str
    ts: datetime
    outcome: str
    endpoint: str
    source: str
    kind: str = "call"
    user_id: str | None = None
    method: str | None = None
    status: int | None = None
    error_code: str | None = None
    category: str | None = None
    severity: str | None = None
    transient: bool | None = None
    attempts: int = 1
    duration_ms: float | None = None
    platform: str | None = None
    os_version: str | None = None
    app_version: str | None = None
    sdk_version: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_copy)
    count: int = 1
    segment: str | None = None
    extensions: Mapping[str, Any] = attrs.field(factory=dict, converter=_copy)


@attrs.frozen
class OutcomeRecord:
    """One business outcome (``kind: "outcome"``), as stored: a purchase, a renewal, ...

    ``value`` is the event's value (a number, a short string, a bool, or None);
    ``extensions`` is already redacted.
    """

    event_id: str
    ts: datetime
    name: str
    user_id: str | None = None
    value: bool | int | float | str | None = None
    extensions: Mapping[str, Any] = attrs.field(factory=dict, converter=_copy)


@attrs.frozen
class StoredEvent:
    """An event read back, with the time the server received it."""

    event: EventRecord
    received_at: datetime


@attrs.frozen
class IngestResult:
    """What one `Store.ingest_events` call did.

    Attributes:
        accepted: events stored now (new event ids).
        duplicates: events whose id was already stored, or repeated in the batch;
            they changed nothing (not even the rollups).
    """

    accepted: int
    duplicates: int


@attrs.frozen
class PruneResult:
    """Rows deleted by one round of pruning, per table.

    `Store.prune_events` fills the first three; the retention worker adds the
    delivered outbox events `Store.prune_outbox` deleted.
    """

    events: int
    rollups: int
    user_minutes: int
    outbox_events: int = 0
    daily_rollups: int = 0
    #: outcome events, pruned with the call events (same retention)
    outcomes: int = 0


@attrs.frozen
class RollupRow:
    """Calls and failures of one minute, endpoint, outcome, dimensions."""

    minute: datetime
    endpoint: str
    outcome: str
    error_code: str | None
    category: str | None
    platform: str | None
    os_version: str | None
    app_version: str | None
    sdk_version: str | None
    calls: int
    failures: int
    first_seen: datetime
    last_seen: datetime


@attrs.frozen
class UserMinute:
    """Calls and failures of one user on one endpoint in one minute."""

    minute: datetime
    endpoint: str
    user_id: str
    calls: int
    failures: int


#: how long daily rollups are kept when no retention is given (5 years)
DEFAULT_DAILY_ROLLUP_RETENTION = timedelta(days=1825)


@attrs.frozen
class RollupSpan:
    """A half-open time span ``[since, until)`` of one rollup table: ``grain`` is
    ``minute`` (rows whose minute is in it) or ``day`` (rows whose UTC day starts in it)."""

    grain: str
    since: datetime
    until: datetime


@attrs.frozen
class RollupGroup:
    """Sums of the rollups of one combination of dimension values over a span.

    ``values`` follow the columns asked for (None: the dimension was absent);
    ``first_seen``/``last_seen`` are the first and last call of the group in the span.
    """

    values: tuple[str | None, ...]
    calls: int
    failures: int
    first_seen: datetime
    last_seen: datetime


@attrs.frozen
class SeriesBucket:
    """Calls and failures of one time bucket (buckets without calls are not returned)."""

    start: datetime
    calls: int
    failures: int
