"""Bearer-key checks for the admin and read endpoints (constant-time comparisons).

Keys are compared as SHA-256 digests with `hmac.compare_digest`, so neither the
content nor the length of a configured key leaks through response timing. With no
admin key configured, admin endpoints answer 401 ADMIN_DISABLED: a server never runs
an admin API nobody can secure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.requests import Request

from ._problems import HttpProblem

__all__ = ["KeyChecker", "bearer_token"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="errdiscount"'}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def bearer_token(request: Request) -> str | None:
    """The credential of ``Authorization: Bearer <credential>`` (at most 1 KB), or None."""
    return _bearer(request)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None or len(header) > 1024:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class KeyChecker:
    """Holds digests of the admin key and the app keys; never the keys themselves."""

    def __init__(self, admin_key: str | None, app_keys: Iterable[str]) -> None:
        self._admin = None if admin_key is None else _digest(admin_key)
        self._apps = tuple(_digest(key) for key in app_keys)

    def _matches(self, presented: str | None, digests: Iterable[bytes | None]) -> bool:
        if presented is None:
            return False
        given = _digest(presented)
        found = False
        for digest in digests:
            # No early exit: every configured key costs the same comparison.
            if digest is not None and hmac.compare_digest(given, digest):
                found = True
        return found

    def require_admin(self, request: Request) -> None:
        """Raises 401 unless the request carries the admin key."""
        if self._admin is None:
            raise HttpProblem(
                401,
                "ADMIN_DISABLED",
                "The admin API is disabled on this server.",
                "Start the server with --admin-key (or ERRDISCOUNT_ADMIN_KEY).",
                _CHALLENGE,
            )
        if not self._matches(_bearer(request), (self._admin,)):
            raise _unauthorized("the admin key")

    def require_reader(self, request: Request) -> None:
        """Raises 401 unless the request carries the admin key or an app key."""
        if not self._matches(_bearer(request), (self._admin, *self._apps)):
            raise _unauthorized("an app key or the admin key")


def _unauthorized(what: str) -> HttpProblem:
    return HttpProblem(
        401,
        "UNAUTHORIZED",
        "Missing or wrong credentials.",
        f"Send Authorization: Bearer <{what}>.",
        _CHALLENGE,
    )
