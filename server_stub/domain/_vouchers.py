"""Mint a voucher with the server's key, with a fresh alert id, ready to record.

Shared by the admin API (``POST /v1/tokens``) and the demo shop, so both mint
exactly the same way: the token is signed, read back through the server's own
verifier (the claims the store records are the ones any verifier will see), and
turned into the `IssuedToken` record with an opaque ``alert_id`` that
``GET /v1/alerts/{id}`` resolves. Plain arguments in, a typed value out: the
caller records it (``Store.record_issued``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

import attrs

from errdiscount_sdk import Compensation, DiscountToken, InvalidClaims, TokenIssuer
from errdiscount_sdk.tokens import check_https_url
from server_stub.store import IssuedToken

from ._render import campaign_of, store_amount
from ._trust import TokenGate

__all__ = ["IssuedVoucher", "alert_url", "mint_voucher"]


@attrs.frozen
class IssuedVoucher:
    token: str = attrs.field(repr=False)
    claims: DiscountToken
    record: IssuedToken
    alert_id: str
    alert_url: str


def alert_url(base: str, alert_id: str) -> str:
    """The popup URL of an alert id under the server's public ``base`` URL."""
    return base.rstrip("/") + "/v1/alerts/" + alert_id


async def mint_voucher(
    issuer: TokenIssuer,
    gate: TokenGate,
    *,
    public_base: str,
    subject: str,
    error_code: str,
    category: str,
    severity: str,
    compensation: Compensation | dict[str, Any],
    ttl: float | dt.timedelta | None,
    segment: str | None = None,
    incident: str | None = None,
    message: Mapping[str, str] | None = None,
    suggestion: Mapping[str, str] | None = None,
    priority: bool = False,
    support_flag: bool = False,
) -> IssuedVoucher:
    """Sign and verify one voucher; the caller records ``.record``.

    ``message`` and ``suggestion`` (language tag → text, already checked by
    `_provider_text`) are the provider's own words for the popup; they are kept
    with the record only, never put in the token. ``priority`` and ``support_flag``
    (the policy's care flags) go into the token, the record and so the ledger.

    Raises:
        ConfigurationError, TokenError: the claims are not valid for a token.
    """
    alert_id = secrets.token_urlsafe(16)
    url = alert_url(public_base, alert_id)
    try:
        alert_claim: str | None = check_https_url(url, "alert")
    except InvalidClaims:
        alert_claim = None  # the claim must be https; a loopback server is not
    token = issuer.issue(
        subject=subject,
        error_code=error_code,
        category=category,
        severity=severity,
        compensation=compensation,
        ttl=ttl,
        segment=segment,
        incident=incident,
        alert=alert_claim,
        priority=priority,
        support_flag=support_flag,
    )
    claims = await gate.verify(token)
    amount, unit = store_amount(claims.compensation)
    record = IssuedToken(
        jti=claims.jti,
        subject=claims.sub,
        issuer=claims.iss,
        kind=claims.compensation.kind,
        amount=amount,
        unit=unit,
        campaign=campaign_of(claims),
        expires_at=claims.expires_at,
        alert_id=alert_id,
        token=token,
        message=message or {},
        suggestion=suggestion or {},
        priority=claims.priority,
        support_flag=claims.support_flag,
        error_code=error_code,
        incident=incident,
        alert_url=url,
        severity=severity,
        segment=segment,
    )
    return IssuedVoucher(token, claims, record, alert_id, url)
