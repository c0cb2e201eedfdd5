"""Admin endpoints (Authorization: Bearer <admin-key>): issue, reverse, budgets, pools, caps.

The ledger endpoints live in `_routes_ledger`. Every handler checks the admin key
first, before reading the body, so an anonymous client cannot make the server parse
up to the admin body cap.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk import (
    Compensation,
    CompensationDecision,
    ConfigurationError,
    PolicyError,
    TokenError,
)
from errdiscount_sdk.tokens import check_compensation
from server_stub.store import (
    AlreadyReversed,
    RedemptionNotFound,
    Reversed,
    UserCap,
)

from .._settings import ADMIN_BODY_LIMIT
from .._state import ServerState, state_of
from ..domain._provider_text import provider_texts
from ..domain._render import (
    budget_json,
    compensation_json,
    pool_json,
    redemption_json,
    rfc3339,
)
from ..domain._vouchers import mint_voucher
from ..web._body import Field, invalid_body, read_json
from ..web._problems import HttpProblem, json_response
from ._redeem import check_path_id

__all__ = ["admin_routes"]

MAX_CODES_PER_REQUEST = 10_000
_TEXT = 256

_ISSUE = {
    "subject": Field((str,), max_length=_TEXT),
    "error_code": Field((str,), max_length=64),
    "category": Field((str,), max_length=32),
    "severity": Field((str,), max_length=32),
    "segment": Field((str,), required=False, max_length=32),
    "incident": Field((str,), required=False, max_length=128),
    "transient": Field((bool,), required=False),
    "compensation": Field((dict,), required=False),
    "ttl": Field((int,), required=False, minimum=1, maximum=366 * 86400),
    # Shapes and characters are checked by `provider_texts`.
    "message": Field((str, dict), required=False),
    "suggestion": Field((str, dict), required=False),
    "lang": Field((str,), required=False),
}
_REVERSAL = {"reason": Field((str,), max_length=1000)}
_BUDGET = {
    "total": Field((int,), minimum=0, maximum=2**53),
    "unit": Field((str,), max_length=64),
}
_CODES = {"codes": Field((list,), max_length=MAX_CODES_PER_REQUEST, items=str)}
_CAP = {
    "max_redemptions": Field((int,), minimum=0, maximum=2**31),
    "period_seconds": Field((int,), minimum=1, maximum=366 * 86400),
}


def _path(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    if not check_path_id(value):
        raise invalid_body(f"Path segment {name!r} must be 1 to 128 printable characters.")
    return value


def _admin(request: Request) -> ServerState:
    state = state_of(request)
    state.keys.require_admin(request)
    return state


def _acting(request: Request) -> tuple[ServerState, str]:
    """The state and the admin key's name: the ``actor`` of the ledger rows it causes."""
    state = state_of(request)
    return state, state.keys.require_admin(request)


def _compensation(
    state: ServerState, body: dict[str, Any]
) -> tuple[Compensation, dt.timedelta, CompensationDecision]:
    try:
        decision = state.policy.decide(
            body["error_code"],
            category=body["category"],
            severity=body["severity"],
            transient=bool(body.get("transient") or False),
            segment=body.get("segment"),
        )
        override = body.get("compensation")
        chosen = (
            check_compensation(override, ConfigurationError, "compensation")
            if override is not None
            else decision.compensation
        )
    except (PolicyError, ConfigurationError) as exc:
        raise invalid_body(str(exc)) from None
    if chosen is None:
        raise HttpProblem(
            422,
            "NOT_COMPENSABLE",
            f"The compensation policy does not compensate this error ({decision.reason}).",
            "Pass an explicit compensation to override the policy.",
        )
    ttl = dt.timedelta(seconds=body["ttl"]) if body.get("ttl") else decision.ttl
    return chosen, ttl, decision


async def issue_token(request: Request) -> Response:
    state, actor = _acting(request)
    body = await read_json(request, ADMIN_BODY_LIMIT, _ISSUE)
    message, suggestion = provider_texts(body)
    compensation, ttl, decision = _compensation(state, body)
    try:
        voucher = await mint_voucher(
            state.issuer,
            state.gate,
            public_base=state.public_base(request),
            subject=body["subject"],
            error_code=body["error_code"],
            category=body["category"],
            severity=body["severity"],
            compensation=compensation,
            ttl=ttl,
            segment=body.get("segment"),
            incident=body.get("incident"),
            message=message,
            suggestion=suggestion,
            # The segment's care flags hold even when the compensation is overridden.
            priority=decision.priority,
            support_flag=decision.support_flag,
        )
    except (ConfigurationError, TokenError) as exc:
        raise invalid_body(str(exc)) from None
    await state.db(state.store.record_issued, voucher.record, actor=actor)
    state.notify_events()
    issued = voucher.record
    return json_response(
        {
            "token": voucher.token,
            "jti": issued.jti,
            "alert_id": voucher.alert_id,
            "alert_url": voucher.alert_url,
            "compensation": compensation_json(issued.kind, issued.amount, issued.unit),
            "expires_at": rfc3339(issued.expires_at),
            "priority": issued.priority,
            "support_flag": issued.support_flag,
        },
        201,
    )


async def reverse(request: Request) -> Response:
    state, actor = _acting(request)
    redemption_id = _path(request, "redemption_id")
    body = await read_json(request, ADMIN_BODY_LIMIT, _REVERSAL)
    outcome = await state.db(state.store.reverse, redemption_id, body["reason"], actor=actor)
    if isinstance(outcome, Reversed):
        state.notify_events()
    if isinstance(outcome, RedemptionNotFound):
        raise HttpProblem(
            404, "REDEMPTION_NOT_FOUND", "No redemption has this id.", "Check the id."
        )
    if isinstance(outcome, AlreadyReversed):
        raise HttpProblem(
            409,
            "ALREADY_REVERSED",
            "This redemption was reversed before.",
            "Nothing to do: see GET /v1/ledger for the reversal.",
        )
    assert isinstance(outcome, Reversed)
    found = await state.db(state.store.redemption, redemption_id)
    return json_response(redemption_json(found or outcome.redemption))


async def put_budget(request: Request) -> Response:
    state, actor = _acting(request)
    kind, campaign = _path(request, "kind"), _path(request, "campaign")
    body = await read_json(request, ADMIN_BODY_LIMIT, _BUDGET)
    existing = await state.db(state.store.budget, kind, campaign)
    if existing is not None and existing.unit != body["unit"]:
        # A valid request that conflicts with the budget as it stands: 409, not 422.
        raise HttpProblem(
            409,
            "BUDGET_UNIT_CONFLICT",
            f"This budget counts in {existing.unit}; its unit cannot change.",
            "Use the budget's unit, or create another campaign.",
        )
    budget = await state.db(
        state.store.set_budget, kind, campaign, body["total"], unit=body["unit"], actor=actor
    )
    return json_response(budget_json(budget))


async def list_budgets(request: Request) -> Response:
    state = _admin(request)
    budgets = await state.db(state.store.budgets)
    return json_response({"budgets": [budget_json(b) for b in budgets]})


async def load_codes(request: Request) -> Response:
    state, actor = _acting(request)
    pool = _path(request, "pool")
    body = await read_json(request, ADMIN_BODY_LIMIT, _CODES)
    loaded = await state.db(state.store.load_codes, pool, body["codes"], actor=actor)
    return json_response(pool_json(loaded))


async def get_pool(request: Request) -> Response:
    state = _admin(request)
    pool = _path(request, "pool")
    found = await state.db(state.store.code_pool, pool)
    if found is None:
        raise HttpProblem(
            404, "POOL_NOT_FOUND", "No coupon-code pool has this name.", "Load codes first."
        )
    return json_response(pool_json(found))


def _cap_json(cap: UserCap) -> dict[str, Any]:
    return {
        "scope": cap.scope,
        "max_redemptions": cap.max_redemptions,
        "period_seconds": int(cap.period.total_seconds()),
    }


async def put_cap(request: Request) -> Response:
    state, actor = _acting(request)
    scope = _path(request, "scope")
    body = await read_json(request, ADMIN_BODY_LIMIT, _CAP)
    cap = UserCap(scope, body["max_redemptions"], dt.timedelta(seconds=body["period_seconds"]))
    await state.db(state.store.set_user_cap, cap, actor=actor)
    return json_response(_cap_json(cap))


async def list_caps(request: Request) -> Response:
    state = _admin(request)
    caps = await state.db(state.store.user_caps)
    return json_response({"user_caps": [_cap_json(c) for c in caps]})


async def delete_cap(request: Request) -> Response:
    state, actor = _acting(request)
    scope = _path(request, "scope")
    if not await state.db(state.store.remove_user_cap, scope, actor=actor):
        raise HttpProblem(404, "CAP_NOT_FOUND", "No cap has this scope.", "See GET /v1/user-caps.")
    return Response(status_code=204)


def admin_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/tokens", issue_token, methods=["POST"]),
        Route("/v1/redemptions/{redemption_id}/reversal", reverse, methods=["POST"]),
        Route("/v1/budgets", list_budgets, methods=["GET"]),
        Route("/v1/budgets/{kind}/{campaign}", put_budget, methods=["PUT"]),
        Route("/v1/coupon-pools/{pool}", get_pool, methods=["GET"]),
        Route("/v1/coupon-pools/{pool}/codes", load_codes, methods=["POST"]),
        Route("/v1/user-caps", list_caps, methods=["GET"]),
        Route("/v1/user-caps/{scope}", put_cap, methods=["PUT"]),
        Route("/v1/user-caps/{scope}", delete_cap, methods=["DELETE"]),
    ]
