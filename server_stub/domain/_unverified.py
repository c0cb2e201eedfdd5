"""Reading a claim of a compact token *without* verifying it, for routing decisions only.

Nothing read here is trusted: a value picks where to look (which issuer's verifier,
which subject's idempotency scope), and whatever is found there must still match the
exact token (its verifier, or the stored SHA-256 fingerprint of the token string).
"""

from __future__ import annotations

import json

from errdiscount_sdk.tokens import b64url_decode
from errdiscount_sdk.wire import MAX_TOKEN_BYTES

__all__ = ["unverified_claim"]


def unverified_claim(token: str, name: str) -> str | None:
    """The string claim ``name`` of a compact JWS, unverified; None if anything is off."""
    if len(token) > MAX_TOKEN_BYTES:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    data = b64url_decode(parts[1])
    if data is None:
        return None
    try:
        claims = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = claims.get(name) if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None
