"""POST /v1/events (app key): ingest call and outcome events; GET /v1/events: list calls.

POST takes ``{"schema_version": 1, "events": [...], "dropped": {...}}`` as JSON,
optionally gzip (``Content-Encoding: gzip``): at most `MAX_BATCH_BYTES` (1 MiB) as sent
and after decompression, at most `MAX_EVENTS_PER_BATCH` (1000) events — the wire's caps,
which the SDK's reporter also obeys. Each event is validated with the SDK's
`parse_event` and redacted again on its own (`to_record`); the valid ones (call events
and ``kind: "outcome"`` business outcomes) are stored in one transaction, deduplicated
on ``event_id``. The answer is
202 ``{"accepted", "duplicates", "rejected": [{"index", "reason"}]}``: one bad event
never rejects its batch. A malformed envelope (not an object, unknown members,
``events`` not a list, a bad ``dropped``, a ``schema_version`` other than 1) is 422 for
the whole request.

``dropped`` carries the client's loss counters (``queue_overflow``, ``network_error``,
``ratelimited``, ``send_error``, ...): they are added to per-app totals and logged at
INFO (a metrics endpoint can read `DroppedCounters` later).

GET filters on ``user_id``, ``endpoint``, ``since`` (inclusive) and ``until``
(exclusive, RFC 3339), newest first; ``limit`` 1 to 1000 (larger values are capped,
default 100). Any bad query parameter is 400 INVALID_QUERY.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk.events import EVENT_SCHEMA_VERSION
from errdiscount_sdk.wire import (
    BATCH_DROPPED,
    BATCH_EVENTS,
    BATCH_SCHEMA_VERSION,
    EVENTS_PATH,
    MAX_BATCH_BYTES,
    MAX_EVENTS_PER_BATCH,
)
from server_stub.store import EventRecord, IngestResult, OutcomeRecord

from .._state import ServerState
from ..domain._events import Rejected, event_json, to_record
from ..web._body import _is_json_media_type, invalid_body
from ..web._encoded import read_encoded
from ..web._problems import HttpProblem, json_response

__all__ = ["DroppedCounters", "events_routes"]

log = logging.getLogger("server_stub.events")

_QUERY = frozenset({"user_id", "endpoint", "since", "until", "limit"})
MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_DROPPED_COUNTERS = 16
_MAX_COUNTER = 2**53


class DroppedCounters:
    """Per-app totals of the events clients report they lost before sending."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, collections.Counter[str]] = {}

    def add(self, app: str, counters: dict[str, int]) -> None:
        with self._lock:
            self._totals.setdefault(app, collections.Counter()).update(counters)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {app: dict(counts) for app, counts in self._totals.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _decode(raw: bytes) -> Any:
    if raw.count(b"[") + raw.count(b"{") > MAX_EVENTS_PER_BATCH * 64:
        raise invalid_body("The body is too deeply structured.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, NaN
        raise HttpProblem(
            400, "INVALID_JSON", "The body is not valid JSON.", "Send a JSON object."
        ) from None


#: loss-counter names as documented (docs/openapi.yaml ``IngestBatch.dropped``)
_COUNTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _dropped(value: object) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_DROPPED_COUNTERS:
        raise invalid_body(
            f"'dropped' must be an object of at most {MAX_DROPPED_COUNTERS} counters."
        )
    for name, count in value.items():
        if _COUNTER_NAME.fullmatch(name) is None:
            raise invalid_body("'dropped' counter names are 1 to 64 identifier characters.")
        # JSON has one number type: 3.0 is the integer 3 (as JSON Schema's "integer").
        whole = isinstance(count, float) and count.is_integer()
        if isinstance(count, bool) or not (isinstance(count, int) or whole):
            raise invalid_body("'dropped' counters are non-negative integers.")
        if not 0 <= count <= _MAX_COUNTER:
            raise invalid_body("'dropped' counters are non-negative integers.")
    return {name: int(count) for name, count in value.items() if count}


_ENVELOPE = frozenset({BATCH_EVENTS, BATCH_DROPPED, BATCH_SCHEMA_VERSION})


def _envelope(document: object) -> tuple[list[Any], dict[str, int]]:
    if not isinstance(document, dict):
        raise invalid_body("The body must be a JSON object.")
    unknown = sorted(set(document) - _ENVELOPE)
    if unknown:
        raise invalid_body(f"Unknown member {unknown[0][:64]!r}.")
    version = document.get(BATCH_SCHEMA_VERSION, EVENT_SCHEMA_VERSION)
    if type(version) is not int or version != EVENT_SCHEMA_VERSION:
        raise invalid_body(
            f"'{BATCH_SCHEMA_VERSION}' must be {EVENT_SCHEMA_VERSION} (the only version known)."
        )
    events = document.get(BATCH_EVENTS)
    if not isinstance(events, list):
        raise invalid_body(f"Member '{BATCH_EVENTS}' is required and must be a list.")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise HttpProblem(
            413,
            "TOO_MANY_EVENTS",
            f"At most {MAX_EVENTS_PER_BATCH} events per request.",
            "Split the batch.",
        )
    return events, (_dropped(document[BATCH_DROPPED]) if BATCH_DROPPED in document else {})


def _bad_query(message: str) -> HttpProblem:
    return HttpProblem(400, "INVALID_QUERY", message, "See GET /openapi.yaml for /v1/events.")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value[:40])
    except ValueError:
        raise _bad_query(f"{name} must be an RFC 3339 timestamp.") from None
    if moment.tzinfo is None:
        raise _bad_query(f"{name} needs a time zone (e.g. Z).")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _bad_query(f"{name} is out of range.") from None


# As documented (docs/openapi.yaml): C0 controls and DEL; the store refuses the same.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _filter(value: str | None, name: str) -> str | None:
    if value is not None and not 0 < len(value) <= 256:
        raise _bad_query(f"{name} must be 1 to 256 characters.")
    if value is not None and _CONTROL.search(value) is not None:
        raise _bad_query(f"{name} contains control characters.")
    return value


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise _bad_query("limit must be a positive integer (at most 1000 are returned).")
    return min(int(value), MAX_PAGE)


def events_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of /v1/events; the loss counters are totalled per app in a `DroppedCounters`."""
    dropped_totals = DroppedCounters()

    async def ingest(request: Request) -> Response:
        app = state.keys.require_app(request)
        if not _is_json_media_type(request.headers.get("content-type")):
            raise HttpProblem(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "The body must be application/json (UTF-8).",
                "Send Content-Type: application/json.",
            )
        raw = await read_encoded(request, limit=MAX_BATCH_BYTES, decoded_limit=MAX_BATCH_BYTES)
        events, dropped = _envelope(_decode(raw))
        now = datetime.now(UTC)
        records: list[EventRecord | OutcomeRecord] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(events):
            parsed = to_record(item, now=now)
            if isinstance(parsed, Rejected):
                rejected.append({"index": index, "reason": parsed.reason})
            else:
                records.append(parsed)
        result = (
            await state.db(state.store.ingest_events, records)
            if records
            else IngestResult(accepted=0, duplicates=0)
        )
        if dropped:
            dropped_totals.add(app, dropped)
            log.info("app %s reports events lost before sending: %s", app, dropped)
        if rejected:
            log.info("app %s: %d of %d events rejected", app, len(rejected), len(events))
        return json_response(
            {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": rejected},
            status=202,
        )

    async def list_events(request: Request) -> Response:
        state.keys.require_reader(request)
        query = request.query_params
        unknown = sorted(set(query.keys()) - _QUERY)
        if unknown:
            raise _bad_query(f"Unknown query parameter {unknown[0][:64]!r}.")
        if any(len(query.getlist(name)) > 1 for name in query):
            raise _bad_query("Each query parameter may appear once.")
        found = await state.db(
            state.store.events,
            user_id=_filter(query.get("user_id"), "user_id"),
            endpoint=_filter(query.get("endpoint"), "endpoint"),
            since=_time(query.get("since"), "since"),
            until=_time(query.get("until"), "until"),
            limit=_limit(query.get("limit")),
        )
        return json_response({"events": [event_json(stored.event) for stored in found]})

    return [
        Route(EVENTS_PATH, ingest, methods=["POST"]),
        Route(EVENTS_PATH, list_events, methods=["GET"]),
    ]
