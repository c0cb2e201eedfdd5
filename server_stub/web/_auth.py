"""Bearer-key checks for the admin and read endpoints (constant-time comparisons).

Keys are compared as SHA-256 digests with `hmac.compare_digest`, so neither the
content nor the length of a configured key leaks through response timing. With no
admin key configured, admin endpoints answer 401 ADMIN_DISABLED: a server never runs
an admin API nobody can secure.

Keys are named (`NamedKey`): `require_admin` returns the name of the admin key that
matched, which the store records as the ``actor`` of every ledger entry the action
causes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from starlette.requests import Request

from ._named_keys import NamedKey
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
    """Holds digests of the admin keys and the app keys, with their names; never the keys."""

    def __init__(self, admin_keys: Sequence[NamedKey], app_keys: Iterable[NamedKey]) -> None:
        self._admins = tuple((k.name, _digest(k.key)) for k in admin_keys)
        self._apps = tuple((k.name, _digest(k.key)) for k in app_keys)

    def _match(self, presented: str | None, named: Iterable[tuple[str, bytes]]) -> str | None:
        if presented is None:
            return None
        given = _digest(presented)
        found: str | None = None
        for name, digest in named:
            # No early exit: every configured key costs the same comparison.
            if hmac.compare_digest(given, digest) and found is None:
                found = name
        return found

    def require_admin(self, request: Request) -> str:
        """The name of the admin key the request carries; raises 401 without one."""
        if not self._admins:
            raise HttpProblem(
                401,
                "ADMIN_DISABLED",
                "The admin API is disabled on this server.",
                "Start the server with --admin-key (or ERRDISCOUNT_ADMIN_KEY).",
                _CHALLENGE,
            )
        name = self._match(_bearer(request), self._admins)
        if name is None:
            raise _unauthorized("an admin key")
        return name

    def require_app(self, request: Request) -> str:
        """Raises 401 unless the request carries an app key; returns that key's name.

        Only app keys ingest events: the admin key is never configured in apps, so a
        leaked reporter configuration can never be an admin credential, and the admin
        key never travels from devices.
        """
        if not self._apps:
            raise HttpProblem(
                401,
                "INGEST_DISABLED",
                "Event ingestion is disabled on this server.",
                "Start the server with --app-key (or ERRDISCOUNT_APP_KEY).",
                _CHALLENGE,
            )
        name = self._match(_bearer(request), self._apps)
        if name is None:
            raise _unauthorized("an app key")
        return name

    def require_reader(self, request: Request) -> str:
        """The name of the admin or app key the request carries; raises 401 without one."""
        name = self._match(_bearer(request), (*self._admins, *self._apps))
        if name is None:
            raise _unauthorized("an app key or an admin key")
        return name


def _unauthorized(what: str) -> HttpProblem:
    return HttpProblem(
        401,
        "UNAUTHORIZED",
        "Missing or wrong credentials.",
        f"Send Authorization: Bearer <{what}>.",
        _CHALLENGE,
    )
