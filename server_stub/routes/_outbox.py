"""Admin endpoints of the outbox and of webhook endpoints (Bearer <admin-key>).

``GET /v1/outbox?status=&after=&limit=`` lists events (oldest first);
``POST /v1/outbox/{id}/requeue`` puts a dead letter back; ``POST/GET/DELETE
/v1/webhook-endpoints`` registers, lists and removes endpoints (with event-type
filters); ``POST /v1/webhook-endpoints/{id}/enable`` re-enables one the dispatcher
disabled (410, or 5 days of failures), its failure streak reset, and logs which admin
did it. A registered endpoint's secret is shown once, in the answer to its creation;
it is never listed.
"""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk.wire import EVENT_TYPES, WEBHOOK_SECRET_PREFIX
from server_stub.store import (
    EventNotFound,
    NotFailed,
    OutboxEvent,
    OutboxStatus,
    WebhookEndpoint,
)

from .._settings import ADMIN_BODY_LIMIT
from .._state import ServerState, state_of
from ..domain._render import rfc3339
from ..web._body import Field, invalid_body, read_json
from ..web._problems import HttpProblem, json_response
from ..workers._sinks import WebhookUrlRefused, check_webhook_url, decode_secret
from ._redeem import check_path_id

__all__ = ["outbox_routes"]

#: the dispatcher's logger: enabling is the operational event that answers its "disabled"
log = logging.getLogger("server_stub.outbox")

_ENDPOINT = {
    "url": Field((str,), max_length=2048),
    "secret": Field((str,), required=False, max_length=256),
    "event_types": Field((list,), required=False, items=str, max_items=len(EVENT_TYPES)),
}


def _admin(request: Request) -> ServerState:
    state = state_of(request)
    state.keys.require_admin(request)
    return state


def event_json(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "status": event.status.value,
        "attempts": event.attempts,
        "created_at": rfc3339(event.created_at),
        "next_attempt_at": rfc3339(event.next_attempt_at),
        "delivered_at": None if event.delivered_at is None else rfc3339(event.delivered_at),
        "delivered_to": list(event.delivered_to),
        "last_error": event.last_error,
        "payload": dict(event.payload),
    }


async def list_outbox(request: Request) -> Response:
    state = _admin(request)
    raw_status = request.query_params.get("status")
    status = None
    if raw_status is not None:
        try:
            status = OutboxStatus(raw_status)
        except ValueError:
            raise invalid_body("status is pending, delivering, delivered or failed.") from None
    after = request.query_params.get("after")
    if after is not None and not check_path_id(after):
        raise invalid_body("after is an event id.")
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise invalid_body("limit is 1 to 1000.")
    limit = int(raw_limit)
    found = await state.db(state.store.outbox_events, status=status, after=after, limit=limit)
    return json_response(
        {
            "events": [event_json(event) for event in found],
            "next_cursor": found[-1].id if len(found) == limit else None,
        }
    )


def _event_id(request: Request) -> str:
    value: str = request.path_params["event_id"]
    if not check_path_id(value):
        raise _no_event()
    return value


def _no_event() -> HttpProblem:
    return HttpProblem(
        404, "EVENT_NOT_FOUND", "No outbox event has this id.", "See GET /v1/outbox."
    )


async def requeue(request: Request) -> Response:
    state = _admin(request)
    event_id = _event_id(request)
    outcome = await state.db(state.store.requeue_event, event_id)
    if isinstance(outcome, EventNotFound):
        raise _no_event()
    if isinstance(outcome, NotFailed):
        raise HttpProblem(
            409,
            "EVENT_NOT_FAILED",
            f"Only failed events can be requeued; this one is {outcome.status.value}.",
            "Nothing to do: it will be (or was) delivered.",
        )
    state.notify_events()
    event = await state.db(state.store.outbox_event, event_id)
    if event is None:  # pragma: no cover - events are never deleted
        raise _no_event()
    return json_response(event_json(event))


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    health = endpoint.health
    disabled = health is not None and health.disabled_at is not None
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "created_at": rfc3339(endpoint.created_at),
        "enabled": not disabled,
        "disabled_reason": health.disabled_reason if health is not None and disabled else None,
        "failing_since": (
            rfc3339(health.failing_since)
            if health is not None and health.failing_since is not None
            else None
        ),
    }


async def add_endpoint(request: Request) -> Response:
    state = _admin(request)
    body = await read_json(request, ADMIN_BODY_LIMIT, _ENDPOINT)
    try:
        check_webhook_url(body["url"], allow_private=state.settings.allow_private_webhooks)
    except WebhookUrlRefused as exc:
        raise invalid_body(f"{exc}.") from None
    secret = body.get("secret") or WEBHOOK_SECRET_PREFIX + base64.b64encode(
        secrets.token_bytes(32)
    ).decode("ascii")
    try:
        decode_secret(secret)
    except ValueError as exc:
        raise invalid_body(f"{exc}.") from None
    types = body.get("event_types") or []
    unknown = sorted(set(types) - EVENT_TYPES)
    if unknown:
        raise invalid_body(f"Unknown event types: {', '.join(unknown)}.")
    endpoint = await state.db(state.store.add_webhook_endpoint, body["url"], [secret], types)
    return json_response({**endpoint_json(endpoint), "secret": secret}, 201)


async def list_endpoints(request: Request) -> Response:
    state = _admin(request)
    found = await state.db(state.store.webhook_endpoints)
    return json_response({"endpoints": [endpoint_json(e) for e in found]})


def _no_endpoint() -> HttpProblem:
    return HttpProblem(
        404,
        "ENDPOINT_NOT_FOUND",
        "No webhook endpoint has this id.",
        "See GET /v1/webhook-endpoints.",
    )


async def delete_endpoint(request: Request) -> Response:
    state = _admin(request)
    endpoint_id: str = request.path_params["endpoint_id"]
    if not check_path_id(endpoint_id) or not await state.db(
        state.store.remove_webhook_endpoint, endpoint_id
    ):
        raise _no_endpoint()
    return Response(status_code=204)


async def enable_endpoint(request: Request) -> Response:
    state = state_of(request)
    actor = state.keys.require_admin(request)
    endpoint_id: str = request.path_params["endpoint_id"]
    if not check_path_id(endpoint_id):
        raise _no_endpoint()
    endpoint = await state.db(state.store.enable_webhook_endpoint, endpoint_id)
    if endpoint is None:
        raise _no_endpoint()
    log.info("outbox: webhook endpoint %s enabled by %s", endpoint.id, actor)
    state.notify_events()  # its pending events are due at their next attempt, as before
    return json_response(endpoint_json(endpoint))


def outbox_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/outbox", list_outbox, methods=["GET"]),
        Route("/v1/outbox/{event_id}/requeue", requeue, methods=["POST"]),
        Route("/v1/webhook-endpoints", add_endpoint, methods=["POST"]),
        Route("/v1/webhook-endpoints", list_endpoints, methods=["GET"]),
        Route("/v1/webhook-endpoints/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
        Route("/v1/webhook-endpoints/{endpoint_id}/enable", enable_endpoint, methods=["POST"]),
    ]
