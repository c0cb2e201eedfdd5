"""Between tokens, the store and the wire: integer amounts, grants, JSON documents.

The store counts in integers of the unit's smallest denomination; tokens carry
``{"kind", "amount", "unit"}`` with currency amounts as decimals. The mapping:

- currency (``USD``): the store counts cents, unit ``USD_cent``; at most 2 decimals.
- ``points`` / ``days``: whole numbers, same unit.

Budgets are therefore set in those store units (``USD_cent``, ``points``, ``days``).
"""

from __future__ import annotations

import re
from typing import Any

from errdiscount_sdk import Compensation, DiscountToken, InvalidClaims
from errdiscount_sdk.wire import RedemptionCode
from server_stub.store import (
    AlreadyRedeemed,
    Budget,
    BudgetExhausted,
    CodeLoad,
    CodePool,
    InventoryExhausted,
    IssuedToken,
    Redeemed,
    RedeemOutcome,
    Redemption,
    StoredResponse,
    UserCapReached,
    compensation_json,
    grant_json,
    rfc3339,
)

from ..web._problems import error_body, json_bytes

__all__ = [
    "budget_json",
    "compensation_json",
    "redemption_json",
    "redemption_response",
    "refusal_code",
    "rfc3339",
    "store_amount",
]

_CURRENCY = re.compile(r"[A-Z]{3}")
_CENT = "_cent"


def store_amount(compensation: Compensation) -> tuple[int, str]:
    """(integer amount, store unit) of a token's compensation.

    Raises:
        InvalidClaims: a fraction the store cannot count exactly.
    """
    amount = compensation.amount
    if _CURRENCY.fullmatch(compensation.unit):
        cents = round(amount * 100)
        if abs(cents - amount * 100) > 1e-6 or cents < 1:
            raise InvalidClaims("claim 'comp.amount' has more than 2 decimals")
        return cents, compensation.unit + _CENT
    if isinstance(amount, float) and not amount.is_integer():
        raise InvalidClaims(f"claim 'comp.amount' must be whole {compensation.unit}")
    return int(amount), compensation.unit


def redemption_json(redemption: Redemption) -> dict[str, Any]:
    return {
        "id": redemption.id,
        "jti": redemption.jti,
        "subject": redemption.subject,
        "compensation": compensation_json(redemption.kind, redemption.amount, redemption.unit),
        "grant": grant_json(redemption),
        "redeemed_at": rfc3339(redemption.redeemed_at),
        "reversed_at": None if redemption.reversed_at is None else rfc3339(redemption.reversed_at),
    }


def pending_json(issued: IssuedToken) -> dict[str, Any]:
    return {
        "jti": issued.jti,
        "alert_id": issued.alert_id,
        "compensation": compensation_json(issued.kind, issued.amount, issued.unit),
        "expires_at": rfc3339(issued.expires_at),
        "priority": issued.priority,
        "support_flag": issued.support_flag,
    }


def budget_json(budget: Budget) -> dict[str, Any]:
    return {
        "kind": budget.kind,
        "campaign": budget.campaign,
        "unit": budget.unit,
        "total": budget.total,
        "remaining": budget.remaining,
    }


def pool_json(pool: CodePool | CodeLoad) -> dict[str, Any]:
    data: dict[str, Any] = {"pool": pool.pool, "remaining": pool.remaining}
    if isinstance(pool, CodePool):
        data["total"] = pool.total
    else:
        data.update(added=pool.added, duplicates=pool.duplicates)
    return data


def campaign_of(token: DiscountToken) -> str:
    """What a redemption draws its budget (and coupon pool) from: the incident, else the kind."""
    return token.incident or token.compensation.kind


#: the refusals of a redemption: (error_code, message, suggestion); status 409
_REFUSALS: dict[type, tuple[str, str, str]] = {
    AlreadyRedeemed: (
        RedemptionCode.ALREADY_REDEEMED,
        "This discount token has already been redeemed.",
        "Nothing to do: a token is redeemed once.",
    ),
    BudgetExhausted: (
        RedemptionCode.BUDGET_EXHAUSTED,
        "The compensation budget for this offer is used up.",
        "Contact support; the operator can raise the budget.",
    ),
    InventoryExhausted: (
        RedemptionCode.INVENTORY_EXHAUSTED,
        "No coupon codes are left for this offer.",
        "Contact support; the operator can load more codes.",
    ),
}


def refusal_code(outcome: RedeemOutcome) -> str | None:
    """The error code `redemption_response` answers for ``outcome``; None when granted."""
    if isinstance(outcome, Redeemed):
        return None
    if isinstance(outcome, UserCapReached):
        return RedemptionCode.USER_CAP_REACHED
    return _REFUSALS[type(outcome)][0]


def redemption_response(outcome: RedeemOutcome) -> StoredResponse:
    """The HTTP response of a redemption outcome: the store's `ResponseRenderer`.

    Pure: the route answers with it and the store keeps it under the Idempotency-Key
    (in the redemption's transaction), so a retry replays these very bytes.
    """
    if isinstance(outcome, Redeemed):
        return StoredResponse(201, json_bytes(redemption_json(outcome.redemption)))
    if isinstance(outcome, UserCapReached):
        return StoredResponse(
            409,
            error_body(
                RedemptionCode.USER_CAP_REACHED,
                "This account reached its limit of compensations for now.",
                f"Try again after {rfc3339(outcome.resets_at)}.",
            ),
        )
    return StoredResponse(409, error_body(*_REFUSALS[type(outcome)]))
