"""POST /v1/redemptions and the read endpoints of redemptions and compensations.

Redeeming, in order: per-IP rate limit → body (16 KiB, exactly ``{"token": str}``)
→ Idempotency-Key syntax → token verification (not stored: a refused token can be
retried; but a refused token whose key already holds a stored response for this very
token gets that response, so a retry after the token expired still sees its grant)
→ per-subject rate limit → the store. With a key, one transaction claims the
key, redeems and stores the response (`redemption_response` of the typed outcome, the
store's renderer), so a retry replays exactly what the first attempt answered, even
across a crash; the route answers with the same pure rendering of the outcome.

Keys are scoped per subject (the token's ``sub``) and fingerprinted with SHA-256 of
the token; they are remembered for 24 hours (docs/server.md).
"""

from __future__ import annotations

import hashlib
import re
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
    IdempotencyKeyLost,
    InFlight,
    KeyedRedemption,
    Mismatch,
    RedeemOutcome,
    RedemptionRequest,
    Replay,
    StoredResponse,
)

from .._settings import PUBLIC_BODY_LIMIT
from .._state import ServerState, state_of
from ..domain._detection_render import auto_json, user_compensation_json
from ..domain._render import (
    campaign_of,
    pending_json,
    redemption_json,
    redemption_response,
    refusal_code,
    store_amount,
)
from ..domain._unverified import unverified_claim
from ..domain._vouchers import alert_url
from ..web._body import Field, read_json
from ..web._problems import JSON, HttpProblem, json_response

__all__ = ["check_path_id", "client_ip", "redemption_routes"]

MAX_IDEMPOTENCY_KEY = 255
#: an RFC 8941 sf-string, or a bare key: printable ASCII without ``"`` and ``\``, no
#: edge spaces; 1 to 255 characters inside. docs/openapi.yaml states this same pattern.
IDEMPOTENCY_KEY = re.compile(
    r'"[ !#-\[\]-~]{1,255}"|[!#-\[\]-~](?:[ !#-\[\]-~]{0,253}[!#-\[\]-~])?'
)
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
    value = raw.strip(" \t")
    if IDEMPOTENCY_KEY.fullmatch(value) is not None:
        return value[1:-1] if value.startswith('"') else value
    raise HttpProblem(
        400,
        RedemptionCode.IDEMPOTENCY_KEY_INVALID,
        "The Idempotency-Key must be 1 to 255 printable ASCII characters"
        ' (no " or \\ except as the quotes of an RFC 8941 string).',
        "Send a fresh random key, e.g. a UUID.",
    )


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
        priority=token.priority,
        support_flag=token.support_flag,
    )


async def redeem(request: Request) -> Response:
    """POST /v1/redemptions; every final answer counted once (`ServerMetrics.redemption`).

    A refusal is any 4xx answer, by its error code (token, rate limit, idempotency,
    cap, budget, inventory, already redeemed, bad body); a 5xx is a store error,
    counted where it is translated (`store_errors`), not here.
    """
    state = state_of(request)
    try:
        response, outcome, code = await _redeem(state, request)
    except HttpProblem as problem:
        if problem.status < 500:
            state.metrics.redemption("refused", problem.code)
        raise
    state.metrics.redemption(outcome, code)
    return response


async def _redeem(state: ServerState, request: Request) -> tuple[Response, str, str | None]:
    wait = state.ip_limit.acquire(client_ip(request))
    if wait:
        raise rate_limited(wait, "address")
    body = await read_json(request, PUBLIC_BODY_LIMIT, _BODY)
    key = idempotency_key(request)
    try:
        token = await state.gate.verify(body["token"])
    except TokenError as exc:
        if key is not None:
            stored = await _stored_response(state, body["token"], key)
            if stored is not None:
                replayed = _respond(StoredResponse(stored.status, stored.body), replayed=True)
                return replayed, "replayed", None
        raise token_problem(exc) from None
    wait = state.subject_limit.acquire(token.sub)
    if wait:
        raise rate_limited(wait, "account")
    redemption = _request_for(token)
    if key is None:
        outcome = await state.redeem_unkeyed(redemption)
        state.notify_events()
        return _counted(outcome)
    item = KeyedRedemption(redemption, "redeem:" + token.sub, key, _fingerprint(body["token"]))
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
        return _respond(StoredResponse(result.status, result.body), replayed=True), "replayed", None
    # The store kept redemption_response(result) under the key; it is pure, so this
    # is byte for byte what a retry will replay.
    state.notify_events()
    return _counted(result)


def _counted(outcome: RedeemOutcome) -> tuple[Response, str, str | None]:
    code = refusal_code(outcome)
    return _respond(redemption_response(outcome)), "refused" if code else "redeemed", code


def _fingerprint(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


async def _stored_response(state: ServerState, raw_token: str, key: str) -> Replay | None:
    """What the first attempt with this key and this exact token answered, if it did.

    For a retry whose token no longer verifies (expired since, or its key retired):
    the user who was granted must see the grant again, not "offer expired". The
    subject is read unverified, only to find the scope; the record must then match
    the SHA-256 of this very token string, which was verified when it was stored, so
    a forged token naming someone else's subject finds nothing (and learns nothing:
    a miss answers the token's own refusal).
    """
    subject = unverified_claim(raw_token, "sub")
    if subject is None:
        return None
    try:
        return await state.db(
            state.store.stored_response, "redeem:" + subject, key, _fingerprint(raw_token)
        )
    except HttpProblem as problem:
        if problem.status == 422:  # a subject the store cannot hold was never stored
            return None
        raise


def _respond(response: StoredResponse, *, replayed: bool = False) -> Response:
    headers = {IDEMPOTENT_REPLAYED_HEADER: "true"} if replayed else None
    return Response(response.body, status_code=response.status, media_type=JSON, headers=headers)


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
    issued_all = await state.db(state.store.user_compensations, subject)
    decisions = await state.db(state.store.auto_compensations, user_id=subject, limit=1000)
    pending: list[dict[str, Any]] = []
    for issued in found.pending:
        item = pending_json(issued)
        item["alert_url"] = alert_url(state.public_base(request), issued.alert_id)
        pending.append(item)
    return json_response(
        {
            "subject": subject,
            "redeemed": [redemption_json(r) for r in found.redeemed],
            "pending": pending,
            # Every token issued (automatic: reason episode/incident and ref; else
            # manual) and the detector's decisions for the subject (docs/detection.md).
            "issued": [user_compensation_json(row) for row in issued_all],
            "automatic": [auto_json(row) for row in decisions],
        }
    )


def redemption_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/redemptions", redeem, methods=["POST"]),
        Route("/v1/redemptions/{redemption_id}", get_redemption, methods=["GET"]),
        Route("/v1/users/{subject}/compensations", compensations, methods=["GET"]),
    ]
