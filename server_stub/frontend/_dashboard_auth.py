"""Who may see ``/dashboard``: an admin key, checked once at sign-in, then a signed cookie.

The cookie never holds the key. Its value is ``dash1.<payload>.<mac>``: the payload is
base64url JSON ``{"adm", "iat", "exp", "n"}`` naming the admin key that signed in, and the
MAC is HMAC-SHA256 over ``dash1.<payload>`` with a key derived from the server's signing
key *and that admin's current keys*. So every replica sharing the signing key accepts it,
it expires (`DEFAULT_TTL`, 8 hours), and changing or removing an admin key ends that
admin's sessions at once. The label differs from the browser session tokens' (``ses1.``,
`SessionSigner`), so a user session can never pass for an admin one, nor the reverse.
Key comparisons are constant-time over SHA-256 digests (as `KeyChecker`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives import serialization

from errdiscount_sdk import SigningKey

from ..domain._sessions import b64url, unb64url
from ..web._named_keys import NamedKey

__all__ = ["COOKIE_PREFIX", "DEFAULT_TTL", "DashboardSessionInvalid", "DashboardSessions"]

COOKIE_PREFIX = "dash1."
DEFAULT_TTL = 8 * 3600
MAX_COOKIE = 1024
_LABEL = b"errdiscount dashboard session v1\x00"


class DashboardSessionInvalid(ValueError):
    """The dashboard cookie is malformed, tampered with, expired, or its admin key is gone."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class DashboardSessions:
    """Checks admin keys at sign-in and issues and verifies the dashboard cookie."""

    def __init__(
        self,
        signing_key: SigningKey,
        admin_keys: Sequence[NamedKey],
        *,
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret = signing_key.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        base = hashlib.sha256(_LABEL + secret).digest()
        self._admins = tuple((k.name, _digest(k.key)) for k in admin_keys)
        by_name: dict[str, list[bytes]] = {}
        for name, digest in self._admins:
            by_name.setdefault(name, []).append(digest)
        # One MAC key per admin name, bound to that name's keys: rotating them ends its sessions.
        self._mac_keys = {
            name: hmac.new(base, name.encode() + b"\x00" + b"".join(sorted(d)), "sha256").digest()
            for name, d in by_name.items()
        }
        self.ttl = ttl
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """False when no admin key is configured: nobody can sign in."""
        return bool(self._admins)

    def admin_of_key(self, presented: str) -> str | None:
        """The name of the admin key ``presented`` is, or None (constant time over all keys)."""
        given = _digest(presented)
        found: str | None = None
        for name, digest in self._admins:
            if hmac.compare_digest(given, digest) and found is None:
                found = name
        return found

    def _mac(self, name: str, signed: str) -> str | None:
        key = self._mac_keys.get(name)
        if key is None:
            return None
        return b64url(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())

    def issue(self, admin: str) -> str:
        """A cookie value for the admin named ``admin`` (a configured name)."""
        now = int(self._clock())
        claims = {"adm": admin, "iat": now, "exp": now + self.ttl, "n": secrets.token_hex(8)}
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signed = COOKIE_PREFIX + body
        mac = self._mac(admin, signed)
        if mac is None:
            raise DashboardSessionInvalid("no such admin")
        return f"{signed}.{mac}"

    def admin(self, cookie: str) -> str:
        """The admin name of a valid cookie.

        Raises:
            DashboardSessionInvalid: malformed, wrong MAC, expired, or the admin is gone.
        """
        if len(cookie) > MAX_COOKIE or not cookie.startswith(COOKIE_PREFIX):
            raise DashboardSessionInvalid("not a dashboard session")
        signed, _, mac = cookie.rpartition(".")
        if not signed.startswith(COOKIE_PREFIX):
            raise DashboardSessionInvalid("not a dashboard session")
        try:
            claims = json.loads(unb64url(signed[len(COOKIE_PREFIX) :]))
        except (ValueError, UnicodeDecodeError):
            raise DashboardSessionInvalid("bad payload") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("adm"), str):
            raise DashboardSessionInvalid("bad payload")
        name: str = claims["adm"]
        expected = self._mac(name, signed)
        if expected is None or not hmac.compare_digest(
            mac.encode("ascii", "replace"), expected.encode("ascii")
        ):
            raise DashboardSessionInvalid("bad signature")
        expires = claims.get("exp")
        if type(expires) is not int or expires <= self._clock():
            raise DashboardSessionInvalid("expired")
        return name
