"""Browser session tokens for the next-login reminder: short-lived, signed, one subject.

The provider's back end asks for one when its user logs in (``POST /v1/sessions``,
app key) and hands it to the page, which reads that user's pending compensations
with it (``GET /v1/me/compensations``). Format: ``ses1.<payload>.<mac>``, where the
payload is base64url JSON ``{"sub", "iat", "exp", "n"}`` and the MAC is base64url
HMAC-SHA256 over ``ses1.<payload>`` with a key derived from the server's signing key
(every worker and replica sharing the key accepts the token). The ``ses1.`` prefix
and the MAC make it useless as a voucher: it is no JWS, so the token verifier refuses
it, and a voucher is no session token either.

Policy: 15 minutes by default (``expires_in``); any change, a wrong key, an expired
token or one above 1 KB is refused (`SessionInvalid`, a 401).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization

from errdiscount_sdk import SigningKey
from errdiscount_sdk.wire import SESSION_TOKEN_PREFIX

__all__ = ["DEFAULT_SESSION_TTL", "SessionInvalid", "SessionSigner", "b64url", "unb64url"]

DEFAULT_SESSION_TTL = 900
MAX_SESSION_TOKEN = 1024
MAX_SUBJECT = 256
_LABEL = b"errdiscount session token v1\x00"


class SessionInvalid(ValueError):
    """The session token is malformed, tampered with or expired."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of every signed value the server hands out."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The inverse of `b64url`.

    Raises:
        ValueError: ``text`` is not base64url.
    """
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


class SessionSigner:
    """Issues and checks session tokens with a key derived from ``signing_key``."""

    def __init__(
        self,
        signing_key: SigningKey,
        *,
        ttl: int = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret = signing_key.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._key = hashlib.sha256(_LABEL + secret).digest()
        self.ttl = ttl
        self._clock = clock

    def _mac(self, signed: str) -> str:
        return b64url(hmac.new(self._key, signed.encode("ascii"), hashlib.sha256).digest())

    def issue(self, subject: str) -> str:
        now = int(self._clock())
        claims = {"sub": subject, "iat": now, "exp": now + self.ttl, "n": secrets.token_hex(8)}
        body = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        signed = SESSION_TOKEN_PREFIX + body
        return f"{signed}.{self._mac(signed)}"

    def subject(self, token: str) -> str:
        """The subject of a valid token.

        Raises:
            SessionInvalid: malformed, wrong MAC, or expired.
        """
        if len(token) > MAX_SESSION_TOKEN or not token.startswith(SESSION_TOKEN_PREFIX):
            raise SessionInvalid("not a session token")
        signed, _, mac = token.rpartition(".")
        if not signed.startswith(SESSION_TOKEN_PREFIX) or not hmac.compare_digest(
            mac.encode("ascii", "replace"), self._mac(signed).encode("ascii")
        ):
            raise SessionInvalid("bad signature")
        try:
            claims = json.loads(unb64url(signed[len(SESSION_TOKEN_PREFIX) :]))
        except (ValueError, UnicodeDecodeError):
            raise SessionInvalid("bad payload") from None
        if not isinstance(claims, dict):
            raise SessionInvalid("bad payload")
        subject, expires = claims.get("sub"), claims.get("exp")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
            raise SessionInvalid("bad subject")
        if type(expires) is not int or expires <= self._clock():
            raise SessionInvalid("expired")
        return subject
