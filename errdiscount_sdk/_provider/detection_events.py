"""From one event of the event contract (docs/events.md) to an `Observation`.

Only the members detection needs are checked (``ts kind outcome user_id endpoint
status category count segment``); the others are ignored. Events of another ``kind``
than ``"call"`` (e.g. ``"outcome"``) are not observations: the adapter returns None.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from .._model.enums import ErrorCategory
from .._model.errors import ConfigurationError, InvalidEvent
from .detection import counts_as_failure
from .detection_config import DEFAULT_CLIENT_STATUSES
from .detection_types import Observation

__all__ = ["MAX_EVENT_LINE_BYTES", "InvalidEvent", "from_event_line", "from_event_mapping"]

MAX_EVENT_LINE_BYTES = 256 * 1024
_MAX_TS_CHARS = 40
_CATEGORIES = frozenset(c.value for c in ErrorCategory)


def _parse_ts(value: Any) -> dt.datetime:
    if type(value) is not str or len(value) > _MAX_TS_CHARS:
        raise ValueError("ts: must be an RFC 3339 UTC timestamp string")
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"ts: not an RFC 3339 timestamp ({value!r})") from None
    if "T" not in value.upper() or ts.utcoffset() != dt.timedelta(0):
        raise ValueError(f"ts: must be an RFC 3339 timestamp in UTC ({value!r})")
    return ts.astimezone(dt.UTC) if ts.tzinfo is not dt.UTC else ts


def from_event_mapping(
    event: Mapping[str, Any],
    *,
    client_statuses: frozenset[int] = DEFAULT_CLIENT_STATUSES,
    line: int | None = None,
) -> Observation | None:
    """The `Observation` of one ``"call"`` event, or None for other kinds.

    ``failed`` is `counts_as_failure` of the event's category and status when its
    outcome is ``"error"``; ``count`` defaults to 1.

    Raises:
        InvalidEvent: a missing or ill-typed member (with ``line`` when given).
    """
    try:
        if not isinstance(event, Mapping):
            raise ValueError("an event must be a JSON object")
        kind = event.get("kind", "call")
        if kind != "call":
            if type(kind) is not str:
                raise ValueError("kind: must be a string")
            return None
        ts = _parse_ts(event.get("ts"))
        outcome = event.get("outcome")
        if outcome not in ("ok", "error"):
            raise ValueError("outcome: must be 'ok' or 'error'")
        status = event.get("status")
        if status is not None and (type(status) is not int or not 100 <= status <= 599):
            raise ValueError("status: must be an HTTP status (100-599) or null")
        category = event.get("category")
        if category is not None and category not in _CATEGORIES:
            raise ValueError(f"category: must be one of {sorted(_CATEGORIES)} or null")
        if outcome == "error" and category is None:
            raise ValueError("category: an error needs its category")
        failed = outcome == "error" and counts_as_failure(
            category, status, client_statuses=client_statuses
        )
        return Observation(
            ts=ts,
            user_id=event.get("user_id"),
            endpoint=event.get("endpoint"),  # type: ignore[arg-type]  # validated
            failed=failed,
            count=event.get("count", 1),
            segment=event.get("segment"),
        )
    except (ValueError, ConfigurationError) as exc:
        raise InvalidEvent(str(exc), line) from None


def from_event_line(
    text: str | bytes,
    *,
    client_statuses: frozenset[int] = DEFAULT_CLIENT_STATUSES,
    line: int | None = None,
) -> Observation | None:
    """Parse one JSON line (at most `MAX_EVENT_LINE_BYTES`) into an `Observation`.

    Raises:
        InvalidEvent: not JSON, too long, or not a valid event.
    """
    if len(text) > MAX_EVENT_LINE_BYTES:
        raise InvalidEvent(f"longer than {MAX_EVENT_LINE_BYTES} bytes", line)
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidEvent("not a JSON object", line) from None
    return from_event_mapping(event, client_statuses=client_statuses, line=line)
