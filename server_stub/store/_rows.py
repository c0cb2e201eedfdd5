"""Rows to values (shared by the redemption, admin and query code)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ._base import (
    MAX_ID,
    MAX_NAME,
    MAX_REASON,
    MAX_SHORT,
    Row,
    check_amount,
    check_text,
    from_us,
    opt_from_us,
)
from ._errors import StoreInputError
from ._models import Grant, IssuedToken, Redemption, RedemptionRequest

REDEMPTION_COLUMNS = (
    "id, jti, subject, issuer, kind, amount, unit, campaign, grant_json, expires_at,"
    " idempotency_key, redeemed_at, reversed_at, reversal_reason"
)
ISSUED_COLUMNS = (
    "jti, subject, issuer, kind, amount, unit, campaign, expires_at, alert_id, token, created_at,"
    " message, suggestion, priority, support_flag, error_code, incident, alert_url, severity,"
    " segment, shown_at"
)
MAX_TEXT_LANGUAGES = 8
MAX_LANGUAGE_TAG = 35


def check_request(request: RedemptionRequest) -> None:
    check_text("jti", request.jti, MAX_ID)
    check_text("subject", request.subject, MAX_NAME)
    check_text("issuer", request.issuer, MAX_NAME)
    check_text("kind", request.kind, MAX_SHORT)
    check_text("unit", request.unit, MAX_SHORT)
    check_text("campaign", request.campaign, MAX_ID)
    check_amount("amount", request.amount)


def redemption(row: Row) -> Redemption:
    grant = json.loads(row["grant_json"])
    return Redemption(
        id=row["id"],
        jti=row["jti"],
        subject=row["subject"],
        issuer=row["issuer"],
        kind=row["kind"],
        amount=int(row["amount"]),
        unit=row["unit"],
        campaign=row["campaign"],
        grant=Grant(
            amount=int(grant["amount"]), unit=grant["unit"], coupon_code=grant.get("coupon_code")
        ),
        redeemed_at=from_us(row["redeemed_at"]),
        expires_at=opt_from_us(row["expires_at"]),
        idempotency_key=row["idempotency_key"],
        reversed_at=opt_from_us(row["reversed_at"]),
        reversal_reason=row["reversal_reason"],
    )


def issued(row: Row) -> IssuedToken:
    return IssuedToken(
        jti=row["jti"],
        subject=row["subject"],
        issuer=row["issuer"],
        kind=row["kind"],
        amount=int(row["amount"]),
        unit=row["unit"],
        campaign=row["campaign"],
        expires_at=from_us(row["expires_at"]),
        alert_id=row["alert_id"],
        token=row["token"],
        created_at=from_us(row["created_at"]),
        message=_texts_from_json(row["message"]),
        suggestion=_texts_from_json(row["suggestion"]),
        priority=bool(row["priority"]),
        support_flag=bool(row["support_flag"]),
        error_code=row["error_code"],
        incident=row["incident"],
        alert_url=row["alert_url"],
        severity=row["severity"],
        segment=row["segment"],
        shown_at=opt_from_us(row["shown_at"]),
    )


def texts_json(name: str, texts: Mapping[str, str]) -> str | None:
    """Language → text as stored (a JSON object; NULL when empty), checked for size."""
    if not texts:
        return None
    if len(texts) > MAX_TEXT_LANGUAGES:
        raise StoreInputError(f"{name} has more than {MAX_TEXT_LANGUAGES} languages")
    for tag, text in texts.items():
        check_text(f"{name} language", tag, MAX_LANGUAGE_TAG)
        check_text(name, text, MAX_REASON)
    return json.dumps(dict(texts), ensure_ascii=False)


def _texts_from_json(raw: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        return {}
    return {str(tag): str(text) for tag, text in data.items()}
