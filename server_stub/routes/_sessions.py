"""Browser sessions and the next-login reminder.

``POST /v1/sessions`` (app key; the provider's back end, when its user logs in)
``{"subject"}`` → ``{"session_token", "expires_in"}``. ``GET /v1/me/compensations``
(``Authorization: Bearer <session_token>``) lists that subject's pending
compensations, each with ``seen``; ``POST /v1/me/compensations/{jti}/seen`` records
that the reminder was shown. A session only ever reaches its own subject's data; a
tampered or expired one is 401. CORS applies (``--cors-origin``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._settings import PUBLIC_BODY_LIMIT
from .._state import ServerState, state_of
from ..domain._provider_text import pick_text
from ..domain._render import pending_json, rfc3339
from ..domain._sessions import SessionInvalid
from ..domain._vouchers import alert_url
from ..web._auth import bearer_token
from ..web._body import Field, read_json
from ..web._problems import HttpProblem, json_response
from ._redeem import check_path_id

__all__ = ["session_routes"]

_SESSION = {"subject": Field((str,), max_length=256)}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="errdiscount-session"'}


def _session_subject(request: Request, state: ServerState) -> str:
    token = bearer_token(request)
    try:
        if token is None:
            raise SessionInvalid("missing")
        return state.sessions.subject(token)
    except SessionInvalid:
        raise HttpProblem(
            401,
            "SESSION_INVALID",
            "The session token is missing, tampered with or expired.",
            "Ask your back end for a fresh one (POST /v1/sessions).",
            _CHALLENGE,
        ) from None


async def create_session(request: Request) -> Response:
    state = state_of(request)
    state.keys.require_reader(request)
    body = await read_json(request, PUBLIC_BODY_LIMIT, _SESSION)
    subject = body["subject"]
    if not subject or any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject):
        raise HttpProblem(
            422, "INVALID_BODY", "subject must be printable text.", "Send the user's id."
        )
    token = state.sessions.issue(subject)
    return json_response(
        {"session_token": token, "expires_in": state.sessions.ttl, "subject": subject}, 201
    )


async def my_compensations(request: Request) -> Response:
    state = state_of(request)
    subject = _session_subject(request, state)
    found = await state.db(state.store.compensations, subject)
    seen = await state.db(state.store.reminders_seen, subject)
    base = state.public_base(request)
    lang = request.query_params.get("lang") or "en"
    pending: list[dict[str, Any]] = []
    for issued in found.pending:
        item = pending_json(issued)
        item.update(
            alert_url=issued.alert_url or alert_url(base, issued.alert_id),
            error_code=issued.error_code,
            message=pick_text(issued.message, lang) or None,
            created_at=None if issued.created_at is None else rfc3339(issued.created_at),
            seen=issued.jti in seen,
        )
        pending.append(item)
    return json_response({"subject": subject, "pending": pending})


async def mark_seen(request: Request) -> Response:
    state = state_of(request)
    subject = _session_subject(request, state)
    jti: str = request.path_params["jti"]
    if not check_path_id(jti) or not await state.db(state.store.mark_reminder_seen, jti, subject):
        raise HttpProblem(
            404,
            "COMPENSATION_NOT_FOUND",
            "You have no compensation with this id.",
            "Use a jti from GET /v1/me/compensations.",
        )
    return Response(status_code=204)


def session_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/sessions", create_session, methods=["POST"]),
        Route("/v1/me/compensations", my_compensations, methods=["GET"]),
        Route("/v1/me/compensations/{jti}/seen", mark_seen, methods=["POST"]),
    ]
