"""POST /v1/redemptions and the read endpoints of redemptions and compensations.

Redeeming, in order: per-IP rate limit → body (16 KiB, exactly ``{"token": str}``)
→ Idempotency-Key syntax → token verification (not stored: a refused token can be
retried) → per-subject rate limit → the store. With a key, one transaction claims the
key, redeems and stores the rendered response, so a retry replays exactly what the
first attempt answered, even across a crash.

Keys are scoped per subject (the token's ``sub``) and fingerprinted with SHA-256 of
the token; they are remembered for 24 hours (docs/server.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk import DiscountToken, InvalidClaims, KeySetUnavailable, TokenError
from errdiscount_sdk.wire import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER,
    RedemptionCode,
)
from server_stub.store import (
    AlreadyRedeemed,
    BudgetExhausted,
    IdempotencyKeyLost,
    InFlight,
    InventoryExhausted,
    KeyedRedemption,
    Mismatch,
    Redeemed,
    RedeemOutcome,
    RedemptionRequest,
    Replay,
    UserCapReached,
)

from .._settings import PUBLIC_BODY_LIMIT
from .._state import ServerState, state_of
from ..domain._render import campaign_of, pending_json, redemption_json, rfc3339, store_amount
from ..domain._vouchers import alert_url
from ..web._body import Field, read_json
from ..web._problems import JSON, HttpProblem, error_body, json_bytes, json_response

__all__ = ["alert_url", "check_path_id", "client_ip", "redemption_routes", "render"]

MAX_IDEMPOTENCY_KEY = 255
_BODY = {"token": Field((str,))}
_UNAUTHENTICATED = frozenset(
    {
        "bad_signature",
        "unknown_key",
        "wrong_issuer",
        "wrong_audience",
        "unsupported_algorithm",
        "unsupported_crit",
    }
)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(wait: int, what: str) -> HttpProblem:
    return HttpProblem(
        429,
        RedemptionCode.RATE_LIMITED,
        f"Too many redemption attempts from this {what}.",
        f"Wait {wait} s before trying again.",
        {"Retry-After": str(wait)},
    )


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key, as an RFC 8941 sf-string (quoted) or a bare token."""
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
        if '"' in value or "\\" in value:
            value = ""
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in value):
        raise HttpProblem(
            400,
            RedemptionCode.IDEMPOTENCY_KEY_INVALID,
            "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
            "Send a fresh random key, e.g. a UUID.",
        )
    return value


def token_problem(error: TokenError) -> HttpProblem:
    if isinstance(error, KeySetUnavailable):
        return HttpProblem(
            503,
            RedemptionCode.KEYS_UNAVAILABLE,
            "The keys needed to check this token cannot be fetched right now.",
            "Retry later with the same Idempotency-Key.",
            {"Retry-After": "5"},
        )
    status = 401 if error.reason in _UNAUTHENTICATED else 422
    return HttpProblem(
        status,
        RedemptionCode.TOKEN_PREFIX + error.reason.upper(),
        f"The discount token was refused: {error}.",
        "Use the token exactly as it was issued, before it expires.",
    )


def render(outcome: RedeemOutcome) -> tuple[int, bytes]:
    """The response (status, body) of a redemption outcome; pure, so it can be stored."""
    if isinstance(outcome, Redeemed):
        return 201, json_bytes(redemption_json(outcome.redemption))
    if isinstance(outcome, AlreadyRedeemed):
        return 409, error_body(
            RedemptionCode.ALREADY_REDEEMED,
            "This discount token has already been redeemed.",
            "Nothing to do: a token is redeemed once.",
        )
    if isinstance(outcome, BudgetExhausted):
        return 409, error_body(
            RedemptionCode.BUDGET_EXHAUSTED,
            "The compensation budget for this offer is used up.",
            "Contact support; the operator can raise the budget.",
        )
    if isinstance(outcome, InventoryExhausted):
        return 409, error_body(
            RedemptionCode.INVENTORY_EXHAUSTED,
            "No coupon codes are left for this offer.",
            "Contact support; the operator can load more codes.",
        )
    assert isinstance(outcome, UserCapReached)
    return 409, error_body(
        RedemptionCode.USER_CAP_REACHED,
        "This account reached its limit of compensations for now.",
        f"Try again after {rfc3339(outcome.resets_at)}.",
    )


def _request_for(token: DiscountToken) -> RedemptionRequest:
    try:
        amount, unit = store_amount(token.compensation)
    except InvalidClaims as exc:
        raise token_problem(exc) from None
    return RedemptionRequest(
        jti=token.jti,
        subject=token.sub,
        issuer=token.iss,
        kind=token.compensation.kind,
        amount=amount,
        unit=unit,
        campaign=campaign_of(token),
        expires_at=token.expires_at,
    )


async def redeem(request: Request) -> Response:
    state = state_of(request)
    wait = state.ip_limit.acquire(client_ip(request))
    if wait:
        raise rate_limited(wait, "address")
    body = await read_json(request, PUBLIC_BODY_LIMIT, _BODY)
    key = idempotency_key(request)
    try:
        token = await state.gate.verify(body["token"])
    except TokenError as exc:
        raise token_problem(exc) from None
    wait = state.subject_limit.acquire(token.sub)
    if wait:
        raise rate_limited(wait, "account")
    redemption = _request_for(token)
    store = state.store
    if key is None:
        outcome = await state.db_write(store.redeem, redemption)
        status, content = render(outcome)
        return Response(content, status_code=status, media_type=JSON)
    fingerprint = hashlib.sha256(body["token"].encode("utf-8")).hexdigest()
    rendered: list[tuple[int, bytes]] = []

    def respond(outcome: RedeemOutcome) -> tuple[int, bytes]:
        rendered.append(render(outcome))
        return rendered[-1]

    item = KeyedRedemption(redemption, "redeem:" + token.sub, key, fingerprint, respond)
    try:
        result = await state.redeem_keyed(item)
    except IdempotencyKeyLost:
        raise _in_flight() from None
    if isinstance(result, InFlight):
        raise _in_flight()
    if isinstance(result, Mismatch):
        raise HttpProblem(
            422,
            RedemptionCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used with a different request.",
            "Use a fresh key for each new request.",
        )
    if isinstance(result, Replay):
        return Response(
            result.body,
            status_code=result.status,
            media_type=JSON,
            headers={IDEMPOTENT_REPLAYED_HEADER: "true"},
        )
    # The last rendering is the one committed (a retried transaction renders again);
    # render is pure, so rendering anew would give the same bytes, at ~25 µs more.
    status, content = rendered[-1] if rendered else render(result)
    return Response(content, status_code=status, media_type=JSON)


def _in_flight() -> HttpProblem:
    return HttpProblem(
        409,
        RedemptionCode.IDEMPOTENCY_KEY_IN_FLIGHT,
        "A request with this Idempotency-Key is still being processed.",
        "Retry shortly with the same key to get its result.",
        {"Retry-After": "1"},
    )


def check_path_id(value: str, limit: int = 128) -> bool:
    return 0 < len(value) <= limit and all(" " < c <= "~" for c in value)


async def get_redemption(request: Request) -> Response:
    state = state_of(request)
    state.keys.require_reader(request)
    redemption_id: str = request.path_params["redemption_id"]
    found = None
    if check_path_id(redemption_id):
        found = await state.db(state.store.redemption, redemption_id)
    if found is None:
        raise HttpProblem(
            404,
            RedemptionCode.REDEMPTION_NOT_FOUND,
            "No redemption has this id.",
            "Use the id returned by POST /v1/redemptions.",
        )
    return json_response(redemption_json(found))


async def compensations(request: Request) -> Response:
    state = state_of(request)
    state.keys.require_reader(request)
    subject: str = request.path_params["subject"]
    if not 0 < len(subject) <= 256 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject):
        raise HttpProblem(
            404,
            RedemptionCode.SUBJECT_NOT_FOUND,
            "No such subject.",
            "Use the token's sub as the subject.",
        )
    found = await state.db(state.store.compensations, subject)
    pending: list[dict[str, Any]] = []
    for issued in found.pending:
        item = pending_json(issued)
        item["alert_url"] = alert_url(state, request, issued.alert_id)
        pending.append(item)
    return json_response(
        {
            "subject": subject,
            "redeemed": [redemption_json(r) for r in found.redeemed],
            "pending": pending,
        }
    )


def redemption_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/redemptions", redeem, methods=["POST"]),
        Route("/v1/redemptions/{redemption_id}", get_redemption, methods=["GET"]),
        Route("/v1/users/{subject}/compensations", compensations, methods=["GET"]),
    ]
