"""Detection admin API (admin key): episodes, incidents, degraded endpoints, automatic
compensations, user profiles, and a detector run on demand (docs/detection.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk.detection import ALL_ENDPOINTS, incident_id
from errdiscount_sdk.tokens import SEGMENTS
from server_stub.store import (
    AUTO_STATUSES,
    IncidentRecord,
    UserProfile,
)

from .._settings import ADMIN_BODY_LIMIT
from .._state import ServerState, state_of, store_errors
from ..domain._detection_render import auto_json, episode_json, incident_json, opt_time
from ..domain._render import rfc3339
from ..web._body import Field, invalid_body, read_json
from ..web._problems import HttpProblem, json_response
from ._redeem import check_path_id

__all__ = ["detection_routes"]

_PAGE = 100
_MAX_PAGE = 1000  # a larger limit is capped, as GET /v1/events does
_MAX_SCOPE = 1000
_NAME = 256
_INCIDENT = {
    "scope": Field((list, str), max_length=_MAX_SCOPE),
    "start": Field((str,), max_length=40),
    "end": Field((str,), required=False, max_length=40),
}
_PROFILE = {
    "segment": Field((str,), required=False, max_length=32),
    "value_tier": Field((str,), required=False, max_length=32),
}


#: Names (user ids, endpoints) as the events carry them and the store keeps them: no C0
#: control character or DEL (docs/openapi.yaml: ``^[^\x00-\x1F\x7F]``). A lone
#: surrogate never gets here: `read_json` refuses it, a query decodes to U+FFFD.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f]")


def _is_name(value: str, limit: int = _NAME) -> bool:
    return 0 < len(value) <= limit and _NOT_TEXT.search(value) is None


def _admin(request: Request) -> ServerState:
    state = state_of(request)
    state.keys.require_admin(request)
    return state


def _bad_query(message: str) -> HttpProblem:
    return HttpProblem(400, "INVALID_QUERY", message, "See GET /openapi.yaml.")


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    query = request.query_params
    unknown = sorted(set(query.keys()) - allowed)
    if unknown:
        raise _bad_query(f"Unknown query parameter {unknown[0][:64]!r}.")
    if any(len(query.getlist(name)) > 1 for name in query):
        raise _bad_query("Each query parameter may appear once.")
    found = {name: query[name] for name in query}
    for name, value in found.items():
        if name not in ("since", "limit") and not _is_name(value):
            raise _bad_query(f"{name} must be 1 to {_NAME} characters, none of them control.")
    return found


def _parse_time(value: str, name: str, *, body: bool = False) -> datetime:
    # RFC 3339 allows a lower-case "t" and "z", and a leap second (:60), which
    # `datetime` cannot hold: it is read as the last microsecond of its minute.
    text = value[:40].upper()
    leap = text[16:19] == ":60"
    if leap:
        text = text[:17] + "59" + text[19:]
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(name)
        if leap:
            moment = moment.replace(microsecond=999_999)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        message = f"{name} must be an RFC 3339 timestamp with a time zone."
        raise (invalid_body(message) if body else _bad_query(message)) from None


def _since(query: dict[str, str]) -> datetime | None:
    return None if "since" not in query else _parse_time(query["since"], "since")


def _limit(query: dict[str, str]) -> int:
    value = query.get("limit")
    if value is None:
        return _PAGE
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise _bad_query("limit must be a positive integer (at most 1000 are returned).")
    return min(int(value), _MAX_PAGE)


async def list_episodes(request: Request) -> Response:
    state = _admin(request)
    query = _query(request, {"user_id", "endpoint", "since", "limit"})
    found = await state.db(
        state.store.episodes,
        user_id=query.get("user_id"),
        endpoint=query.get("endpoint"),
        since=_since(query),
        limit=_limit(query),
    )
    return json_response({"episodes": [episode_json(e) for e in found]})


async def list_incidents(request: Request) -> Response:
    state = _admin(request)
    query = _query(request, {"state", "since", "limit"})
    wanted = query.get("state")
    if wanted is not None and wanted not in ("open", "closed"):
        raise _bad_query("state is open or closed.")
    found = await state.db(
        state.store.incidents, state=wanted, since=_since(query), limit=_limit(query)
    )
    return json_response({"incidents": [incident_json(i) for i in found]})


def _scope(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        if value != "all":
            raise invalid_body("scope: 'all' or a list of endpoint names.")
        return (ALL_ENDPOINTS,)
    names = value
    assert isinstance(names, list)
    if not names or not all(isinstance(n, str) and 0 < len(n) <= _NAME for n in names):
        raise invalid_body(f"scope: 'all' or a list of 1 to {_MAX_SCOPE} endpoint names.")
    if not all(_is_name(n) for n in names):
        raise invalid_body("scope: endpoint names have no control characters.")
    if any(n in ("all", ALL_ENDPOINTS) for n in names):
        return (ALL_ENDPOINTS,)
    return tuple(sorted(set(names)))


async def declare_incident(request: Request) -> Response:
    state = _admin(request)
    body = await read_json(request, ADMIN_BODY_LIMIT, _INCIDENT)
    scope = _scope(body["scope"])
    start = _parse_time(body["start"], "start", body=True)
    end = None if body.get("end") is None else _parse_time(body["end"], "end", body=True)
    if end is not None and end < start:
        raise invalid_body("end must not be before start.")
    now = datetime.now(UTC)
    record = IncidentRecord(
        id=incident_id(scope, start, manual=True),
        scope=scope,
        start=start,
        end=end,
        severity=None,
        manual=True,
        state="open",
        affected_users=None,
        declared_at=now,
    )
    created, stored = await state.db(state.store.declare_incident, record)
    return json_response(incident_json(stored), 201 if created else 200)


async def close_incident(request: Request) -> Response:
    state = _admin(request)
    ident = request.path_params["incident_id"]
    if not check_path_id(ident):
        raise invalid_body("Path segment 'incident_id' must be 1 to 128 printable characters.")
    found = await state.db(state.store.request_incident_close, ident, datetime.now(UTC))
    if found is None:
        raise HttpProblem(
            404, "INCIDENT_NOT_FOUND", "No incident has this id.", "See GET /v1/incidents."
        )
    return json_response(incident_json(found), 202 if found.state == "open" else 200)


async def degraded_endpoints(request: Request) -> Response:
    state = _admin(request)
    found = await state.db(state.store.degraded_endpoints)
    return json_response(
        {
            "endpoints": [
                {"endpoint": name, "since": rfc3339(since), "as_of": rfc3339(at)}
                for name, since, at in found
            ]
        }
    )


async def put_user(request: Request) -> Response:
    state = _admin(request)
    user_id = request.path_params["user_id"]
    if not _is_name(user_id):
        raise invalid_body(
            "Path segment 'user_id' must be 1 to 256 characters, none of them control."
        )
    body = await read_json(request, ADMIN_BODY_LIMIT, _PROFILE)
    segment = body.get("segment")
    if segment is not None and segment not in SEGMENTS:
        raise invalid_body(f"segment must be one of {sorted(SEGMENTS)}.")
    tier = body.get("value_tier")
    if tier is not None and not _is_name(tier, 32):
        raise invalid_body("value_tier must be 1 to 32 characters, none of them control.")
    profile = UserProfile(
        user_id=user_id,
        segment=segment,
        value_tier=tier,
        updated_at=datetime.now(UTC),
    )
    await state.db(state.store.set_user_profile, profile)
    return json_response(
        {
            "user_id": user_id,
            "segment": profile.segment,
            "value_tier": profile.value_tier,
            "updated_at": rfc3339(profile.updated_at),
        }
    )


async def list_auto(request: Request) -> Response:
    state = _admin(request)
    query = _query(request, {"status", "user_id", "limit"})
    status = query.get("status")
    if status is not None and status not in AUTO_STATUSES:
        raise _bad_query(f"status is one of {', '.join(AUTO_STATUSES)}.")
    found = await state.db(
        state.store.auto_compensations,
        status=status,
        user_id=query.get("user_id"),
        limit=_limit(query),
    )
    return json_response({"auto_compensations": [auto_json(row) for row in found]})


async def run_detector(request: Request) -> Response:
    _admin(request)
    worker = getattr(request.app.state, "detector", None)
    if worker is None:
        raise HttpProblem(
            503, "NOT_READY", "The detector is not running.", "Retry in a moment.",
            {"Retry-After": "1"},
        )  # fmt: skip
    with store_errors(state_of(request).metrics):
        report = await worker.run_once()
    return json_response(
        {
            "ran": report.ran,
            "now": rfc3339(report.now),
            "replay_from": opt_time(report.replay_from),
            "events": report.events,
            "episodes": report.episodes,
            "incidents_opened": report.incidents_opened,
            "incidents_closed": report.incidents_closed,
            "issued": report.issued,
            "dry_run": report.dry_run,
            "refused": report.refused,
            "withheld": report.withheld,
            "already_recorded": report.already_recorded,
            "mode": worker.mode.value,
        }
    )


def detection_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/episodes", list_episodes, methods=["GET"]),
        Route("/v1/incidents", list_incidents, methods=["GET"]),
        Route("/v1/incidents", declare_incident, methods=["POST"]),
        Route("/v1/incidents/{incident_id}/close", close_incident, methods=["POST"]),
        Route("/v1/endpoints/degraded", degraded_endpoints, methods=["GET"]),
        Route("/v1/users/{user_id}", put_user, methods=["PUT"]),
        Route("/v1/auto-compensations", list_auto, methods=["GET"]),
        Route("/v1/detector/run", run_detector, methods=["POST"]),
    ]
