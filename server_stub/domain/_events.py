"""One event on the server: the SDK's validation and redaction, then the store's record.

There is one definition of a valid event: the SDK's `parse_event`
(`errdiscount_sdk.events`, docs/events.md), which the reporters and the provider
middleware build their events with. This module adds only what a server must decide
itself, and turns the result into the store's `EventRecord`:

- `to_record` never raises: one bad event must not reject its batch. A refused event
  is a `Rejected` whose reason is the SDK's ``InvalidEvent.reason``
  (``"<problem>:<member>"``, never a value).
- Server rules on top of the contract: ``ts`` not before 2000 nor more than a day
  ahead of the server's clock (``range:ts``). Call events become `EventRecord`,
  outcome events (``kind: "outcome"``, the provider's business outcomes)
  `OutcomeRecord`; both are deduplicated on ``event_id`` by the store.
- Redaction runs again (defence in depth: apps redact first) with the SDK's
  `Redactor` in deny-list-only mode (``Redactor(keep_values=True)``), over ``params``
  and the extensions (the unknown members) of both kinds. It is idempotent on what an app already
  redacted; what falls over its caps becomes ``"[Truncated]"``.
- ``event_id`` is stored in its canonical lower-case form (the dedupe key).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from errdiscount_sdk.events import (
    CallEvent,
    InvalidEvent,
    OutcomeEvent,
    Redactor,
    format_ts,
    parse_event,
)
from server_stub.store import EventRecord, OutcomeRecord

__all__ = [
    "EARLIEST",
    "MAX_FUTURE",
    "SERVER_REDACTOR",
    "Rejected",
    "event_json",
    "to_record",
]

MAX_FUTURE: Final = timedelta(days=1)
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
SERVER_REDACTOR: Final = Redactor(keep_values=True)
"""The server's second pass: deny terms only, values kept (the app summarised them)."""


@attrs.frozen
class Rejected:
    """Why one event was not accepted: ``"<problem>:<member>"``, never its value."""

    reason: str


def _redacted(value: Mapping[str, Any]) -> dict[str, Any]:
    return SERVER_REDACTOR.params(value) if value else {}


def _checked_ts(ts: str, now: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(ts[:-1] + "+00:00")  # parse_event normalized it
    except ValueError:
        # The SDK writes years before 1000 without their leading zeros ("31-09-03T..."),
        # which fromisoformat refuses: such a time is before 2000 anyway.
        raise InvalidEvent("range:ts") from None
    if not EARLIEST <= moment <= now + MAX_FUTURE:
        raise InvalidEvent("range:ts")
    return moment


def _outcome(event: OutcomeEvent, now: datetime) -> OutcomeRecord:
    return OutcomeRecord(
        event_id=event.event_id.lower(),
        ts=_checked_ts(event.ts, now),
        name=event.name,
        user_id=event.user_id,
        value=event.value,
        extensions=_redacted(event.extensions),
    )


def _record(event: CallEvent, now: datetime) -> EventRecord:
    moment = _checked_ts(event.ts, now)
    return EventRecord(
        event_id=event.event_id.lower(),
        ts=moment,
        kind=event.kind,
        outcome=event.outcome,
        user_id=event.user_id,
        endpoint=event.endpoint,
        method=event.method,
        status=event.status,
        error_code=event.error_code,
        category=event.category,
        severity=event.severity,
        transient=event.transient,
        attempts=event.attempts,
        duration_ms=event.duration_ms,
        platform=event.platform,
        os_version=event.os_version,
        app_version=event.app_version,
        sdk_version=event.sdk_version,
        source=event.source,
        params=_redacted(event.params),
        count=event.calls,
        segment=event.segment,
        extensions=_redacted(event.extensions),
    )


def to_record(document: object, *, now: datetime) -> EventRecord | OutcomeRecord | Rejected:
    """Validate (the SDK's `parse_event`) and redact one event for the store.

    Args:
        document: one decoded JSON value (an item of ``events``, or a mapped span).
        now: the server's clock, for the "not more than a day ahead" rule.

    Returns:
        The `EventRecord` (a call) or `OutcomeRecord` (an outcome) to store, or
        `Rejected` with the first problem found.
    """
    try:
        event = parse_event(document)
        if isinstance(event, OutcomeEvent):
            return _outcome(event, now)
        return _record(event, now)
    except InvalidEvent as exc:
        return Rejected(exc.reason)


def event_json(record: EventRecord) -> dict[str, Any]:
    """The event as GET /v1/events shows it: every member, extensions merged back.

    What it shows passes `parse_event` again (a listed event can be re-sent as is).
    """
    data: dict[str, Any] = dict(record.extensions)
    data.update(
        {
            "event_id": record.event_id,
            "ts": format_ts(record.ts),
            "kind": record.kind,
            "outcome": record.outcome,
            "user_id": record.user_id,
            "endpoint": record.endpoint,
            "method": record.method,
            "status": record.status,
            "error_code": record.error_code,
            "category": record.category,
            "severity": record.severity,
            "transient": record.transient,
            "attempts": record.attempts,
            "duration_ms": record.duration_ms,
            "platform": record.platform,
            "os_version": record.os_version,
            "app_version": record.app_version,
            "sdk_version": record.sdk_version,
            "source": record.source,
            "params": dict(record.params),
            "count": record.count,
            "segment": record.segment,
        }
    )
    return data
