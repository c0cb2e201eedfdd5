"""The server's keys: its own signing key, and which keys it trusts for which issuer.

- ``--signing-key PATH``: loaded if present, else generated (Ed25519) and saved with
  mode 0600. Its public key is published at /.well-known/jwks.json and trusted.
- ``--trusted-jwks PATH_OR_URL``: more keys for the server's own issuer (other
  replicas' keys, a retired key). These are also **published** at
  /.well-known/jwks.json next to the signing key (file keys always, URL sets as
  far as they are cached), so an offline verifier following that JWKS accepts
  exactly the own-issuer tokens the server accepts: after a rotation the old key
  stays listed for as long as the operator keeps trusting it, which the runbook
  (docs/server.md) ties to the lifetime of its last token.
  ``--trusted-jwks ISSUER|PATH_OR_URL``: keys of
  another issuer; they verify only tokens whose ``iss`` is that issuer, so one
  issuer's key can never vouch for another's tokens. URLs are fetched and cached by
  `AsyncRemoteKeySet` (Cache-Control honoured, https or loopback http only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from errdiscount_sdk import (
    AsyncRemoteKeySet,
    AsyncTokenVerifier,
    DiscountToken,
    KeyLoadError,
    KeySet,
    KeySetUnavailable,
    SigningKey,
    UnknownKey,
    VerificationKey,
    WrongIssuer,
    generate_signing_key,
    load_signing_key_pem,
    save_signing_key_pem,
)
from errdiscount_sdk.tokens import b64url_decode
from errdiscount_sdk.wire import MAX_JWKS_BYTES

__all__ = ["TokenGate", "load_or_create_signing_key"]

LEEWAY_SECONDS = 30.0
# A verifier refuses a JWKS of more keys than this (errdiscount_sdk KeySet.from_jwks).
MAX_PUBLISHED_KEYS = 64


def load_or_create_signing_key(path: str | None) -> SigningKey:
    """The key at ``path``; a new Ed25519 key saved there (0600) when the file is missing.

    ``path=None`` gives an ephemeral key (tests, embedding).

    Raises:
        KeyLoadError: unreadable or unusable key file.
    """
    if path is None:
        return generate_signing_key()
    if os.path.exists(path):
        return load_signing_key_pem(path)
    key = generate_signing_key()
    try:
        save_signing_key_pem(key, path)
    except KeyLoadError:
        # Another replica created it between our check and our write: use theirs.
        if os.path.exists(path):
            return load_signing_key_pem(path)
        raise
    return key


def _read_jwks_file(path: str) -> KeySet:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise KeyLoadError(f"cannot read JWKS file {path!r}: {exc.strerror}") from None
    return KeySet.from_jwks(data)


class _Keys:
    """Static keys first, then remote sets: an async key source for one issuer."""

    def __init__(self, static: list[VerificationKey], remote: list[AsyncRemoteKeySet]) -> None:
        self.static = KeySet(static)
        self.remote = remote

    async def get_key(self, kid: str) -> VerificationKey:
        key = self.static.get(kid)
        if key is not None:
            return key
        unavailable = False
        for source in self.remote:
            try:
                return await source.get_key(kid)
            except UnknownKey:
                continue
            except KeySetUnavailable:
                unavailable = True
        if unavailable:
            raise KeySetUnavailable("a trusted JWKS could not be fetched")
        raise UnknownKey("no trusted key has the token's kid")


def _verifier(
    keys: _Keys, issuer: str, audience: str, clock: Callable[[], float] | None
) -> AsyncTokenVerifier:
    source: KeySet | _Keys = keys if keys.remote else keys.static
    return AsyncTokenVerifier(
        source, issuer=issuer, audience=audience, leeway=LEEWAY_SECONDS, clock=clock
    )


def _claimed_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a compact token, used only to pick the verifier."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 16 * 1024:
        return None
    data = b64url_decode(parts[1])
    if data is None:
        return None
    try:
        claims = json.loads(data)
    except (ValueError, RecursionError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


class TokenGate:
    """Verifies redemption tokens against the keys trusted for their issuer."""

    def __init__(
        self,
        signing_key: SigningKey,
        *,
        issuer: str,
        audience: str,
        trusted: Iterable[str],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        static: dict[str, list[VerificationKey]] = {issuer: [signing_key.public_key()]}
        remote: dict[str, list[AsyncRemoteKeySet]] = {issuer: []}
        for spec in trusted:
            owner, sep, location = spec.partition("|")
            if not sep:
                owner, location = issuer, spec
            if not owner or not location:
                raise KeyLoadError("--trusted-jwks is PATH_OR_URL or ISSUER|PATH_OR_URL")
            if location.startswith(("https://", "http://")):
                remote.setdefault(owner, []).append(
                    AsyncRemoteKeySet(location, allow_http_loopback=True)
                )
            else:
                static.setdefault(owner, []).extend(_read_jwks_file(location))
        self._verifiers = {
            owner: _verifier(
                _Keys(static.get(owner, []), remote.get(owner, [])), owner, audience, clock
            )
            for owner in set(static) | set(remote)
        }
        self._own = self._verifiers[issuer]
        self._own_static = static[issuer]  # the signing key first
        self._own_remote = remote[issuer]
        self._published: tuple[tuple[KeySet | None, ...], bytes] | None = None

    def published_keys(self) -> KeySet:
        """What /.well-known/jwks.json lists: every key trusted for the server's own issuer.

        The signing key first, then keys from own-issuer ``--trusted-jwks`` files,
        then own-issuer URL sets as far as they are cached (publishing never
        fetches, so two servers listing each other cannot call each other in a
        loop). A kid listed twice is listed once; at most `MAX_PUBLISHED_KEYS`.
        """
        chosen: dict[str, VerificationKey] = {}
        sets: list[Iterable[VerificationKey]] = [self._own_static]
        sets.extend(cached for r in self._own_remote if (cached := r.cached_keys()) is not None)
        for keys in sets:
            for key in keys:
                if len(chosen) < MAX_PUBLISHED_KEYS:
                    chosen.setdefault(key.kid, key)
        return KeySet(chosen.values())

    def jwks_body(self) -> bytes:
        """`published_keys` as compact JSON, rebuilt only when a cached URL set changed."""
        version = tuple(r.cached_keys() for r in self._own_remote)
        last = self._published
        if last is None or any(a is not b for a, b in zip(last[0], version, strict=True)):
            body = json.dumps(self.published_keys().to_jwks(), separators=(",", ":")).encode()
            last = self._published = (version, body)
        return last[1]

    async def verify(self, token: str) -> DiscountToken:
        """Verify a token of any trusted issuer.

        Raises:
            TokenError: the subclass naming why the token was refused.
        """
        try:
            return await self._own.verify(token)
        except (UnknownKey, WrongIssuer, KeySetUnavailable) as first:
            claimed = _claimed_issuer(token)
            other = self._verifiers.get(claimed or "") if claimed != self.issuer else None
            if other is None:
                raise first from None
            return await other.verify(token)
