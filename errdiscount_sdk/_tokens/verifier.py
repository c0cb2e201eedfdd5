"""Offline verification of discount tokens: `TokenVerifier` and `AsyncTokenVerifier`.

The token is parsed once, in this order, each step failing with its own
`TokenError` subclass: size cap → three segments → header (canonical
base64url, strict JSON, allow-listed members, ``alg`` in v1, no ``crit``,
``typ``, ``kid``) → key by ``kid`` from the trusted set → ``alg`` equal to the
key's pinned algorithm → payload base64url → signature → payload JSON → claims
→ issuer, audience, time, subject.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .._model.checks import is_real
from .._model.errors import (
    ConfigurationError,
    InvalidSignature,
    MalformedToken,
    TokenError,
    TokenExpired,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedCriticalHeader,
    WrongAudience,
    WrongIssuer,
    WrongSubject,
    WrongTokenType,
)
from .._model.wire import MAX_KID_CHARS, MAX_TOKEN_BYTES
from .keys import KeySet, VerificationKey, b64url_decode
from .spec import ALGORITHMS, TOKEN_TYPE, DiscountToken, check_claims
from .strict_json import StrictJsonError, loads_strict

__all__ = ["AsyncKeySource", "AsyncTokenVerifier", "KeySource", "TokenVerifier"]

# secp256r1 group order. RFC 7518 accepts any s in [1, n-1]; `TokenIssuer` emits
# low-S (s <= n/2) and strict verifiers demand it (docs/token-spec.md, "Malleability").
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER // 2
_ECDSA = ec.ECDSA(hashes.SHA256())
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

_HEADER_MEMBERS = frozenset({"alg", "kid", "typ", "crit"})
# Key-locating headers are refused outright: accepting and ignoring them would
# hide an attack attempt, and keys only ever come from the trusted set.
_KEY_LOCATORS = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256"})
_MAX_HEADER_CHARS = 1024
_MAX_NESTING = 32
_HEADER_CACHE_SIZE = 256


class KeySource(Protocol):
    """Anything that finds a trusted key by ``kid`` (e.g. `RemoteKeySet`)."""

    def get_key(self, kid: str) -> VerificationKey:
        """Raises UnknownKey or KeySetUnavailable."""
        ...


class AsyncKeySource(Protocol):
    """The async counterpart of `KeySource` (e.g. `AsyncRemoteKeySet`)."""

    async def get_key(self, kid: str) -> VerificationKey:
        """Raises UnknownKey or KeySetUnavailable."""
        ...


class _StaticKeys:
    __slots__ = ("_keys",)

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    def get_key(self, kid: str) -> VerificationKey:
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey("no trusted key has the token's kid")
        return key


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    # Counting every bracket byte (strings included) over-estimates the depth: safe.
    if data.count(b"{") + data.count(b"[") > _MAX_NESTING:
        raise MalformedToken(f"{what} is too deeply structured")
    try:
        value = loads_strict(data)
    except StrictJsonError as exc:
        raise MalformedToken(f"{what} is not strict JSON: {exc}") from None
    except (ValueError, RecursionError):  # integers past the digit limit
        raise MalformedToken(f"{what} is not strict JSON") from None
    if type(value) is not dict:
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _header(segment: str) -> tuple[str, str, dict[str, Any]]:
    """Parse and police the protected header; returns (alg, kid, header)."""
    if len(segment) > _MAX_HEADER_CHARS:
        raise MalformedToken("header is too large")
    data = b64url_decode(segment)
    if data is None:
        raise MalformedToken("header is not canonical base64url")
    header = _json_object(data, "header")
    located = _KEY_LOCATORS.intersection(header)
    if located:
        raise MalformedToken(
            f"header member {sorted(located)[0]!r} is not allowed: keys come only from the "
            "trusted key set"
        )
    unknown = set(header) - _HEADER_MEMBERS
    if unknown:
        raise MalformedToken(f"header member {sorted(unknown)[0]!r} is not allowed")
    alg = header.get("alg")
    if type(alg) is not str or alg not in ALGORITHMS:
        raise UnsupportedAlgorithm(f"alg must be one of {list(ALGORITHMS)}")
    if "crit" in header:
        crit = header["crit"]
        if type(crit) is not list or not crit or not all(type(c) is str for c in crit):
            raise MalformedToken("crit must be a non-empty array of strings")
        raise UnsupportedCriticalHeader("crit names extensions this verifier does not implement")
    if header.get("typ") != TOKEN_TYPE:
        raise WrongTokenType(f"typ must be {TOKEN_TYPE!r}")
    kid = header.get("kid")
    if type(kid) is not str or not 0 < len(kid) <= MAX_KID_CHARS:
        raise MalformedToken(f"kid must be a string of 1 to {MAX_KID_CHARS} characters")
    return alg, kid, header


def _check_signature(
    key: VerificationKey, signing_input: bytes, signature: bytes, *, require_low_s: bool = False
) -> None:
    """Raise `InvalidSignature` unless ``signature`` is valid for ``key``'s pinned algorithm.

    ES256 accepts both ``s`` and its twin ``n - s`` (RFC 7518 §3.4 has no low-S
    rule, and standard JOSE libraries emit either); ``require_low_s`` refuses
    the high one. The twin carries the same ``jti``, the redemption key.
    """
    public = key.public_key
    try:
        if key.algorithm == "ES256":
            assert isinstance(public, ec.EllipticCurvePublicKey)
            if len(signature) != 64:
                raise InvalidSignature("signature does not verify")
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
                raise InvalidSignature("signature does not verify")
            if require_low_s and s > _HALF_ORDER:
                raise InvalidSignature("signature does not verify (strict mode requires low-S)")
            public.verify(encode_dss_signature(r, s), signing_input, _ECDSA)
        elif key.algorithm == "RS256":
            assert isinstance(public, rsa.RSAPublicKey)
            if len(signature) != (public.key_size + 7) // 8:
                raise InvalidSignature("signature does not verify")
            public.verify(signature, signing_input, _PKCS1, _SHA256)
        else:
            if len(signature) != 64:
                raise InvalidSignature("signature does not verify")
            public.verify(signature, signing_input)  # type: ignore[call-arg]
    except _CryptoInvalidSignature:
        raise InvalidSignature("signature does not verify") from None


def _seconds(value: float | dt.timedelta, name: str) -> float:
    # A number or a timedelta only: "30" from an unparsed config must fail here, loudly.
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if not is_real(seconds) or not 0 <= seconds <= 3600:
        raise ConfigurationError(
            f"{name} must be between 0 and 3600 seconds (a number or a timedelta), got {value!r}"
        )
    return float(seconds)


class _VerifierCore:
    """What the sync and async verifiers share: everything but the key lookup."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway: float | dt.timedelta,
        max_token_bytes: int,
        clock: Callable[[], float] | None,
        require_low_s: bool,
    ) -> None:
        if not issuer or not isinstance(issuer, str):
            raise ConfigurationError("issuer must be a non-empty string")
        if not audience or not isinstance(audience, str):
            raise ConfigurationError("audience must be a non-empty string")
        if not 64 <= max_token_bytes <= 64 * 1024:
            raise ConfigurationError("max_token_bytes must be between 64 and 65536")
        if clock is not None and not callable(clock):
            raise ConfigurationError("clock must be a callable returning Unix time in seconds")
        if type(require_low_s) is not bool:
            raise ConfigurationError("require_low_s must be True or False")
        self.issuer = issuer
        self.audience = audience
        self.leeway = _seconds(leeway, "leeway")
        self.max_token_bytes = max_token_bytes
        self._clock = clock or time.time
        self.require_low_s = require_low_s
        self._headers: dict[str, tuple[str, str, dict[str, Any]]] = {}

    def _split(self, token: object) -> tuple[str, str, str, str, str]:
        """Returns (token, header segment, payload segment, signature segment, kid)."""
        if isinstance(token, bytes | bytearray):
            if len(token) > self.max_token_bytes:
                raise TokenTooLarge(f"token is longer than {self.max_token_bytes} bytes")
            try:
                token = bytes(token).decode("ascii")
            except UnicodeDecodeError:
                raise MalformedToken("token is not ASCII") from None
        if type(token) is not str:
            raise MalformedToken("token must be a string")
        if len(token) > self.max_token_bytes:
            raise TokenTooLarge(f"token is longer than {self.max_token_bytes} bytes")
        parts = token.split(".")
        if len(parts) != 3:
            raise MalformedToken("token must have three dot-separated segments")
        head, payload, signature = parts
        cached = self._headers.get(head)
        if cached is None:
            cached = _header(head)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[head] = cached
        return token, head, payload, signature, cached[1]

    def _finish(
        self,
        token: str,
        head: str,
        payload: str,
        signature: str,
        key: VerificationKey,
        subject: str | None,
    ) -> DiscountToken:
        alg, _kid, header = self._headers.get(head) or _header(head)
        if alg != key.algorithm:
            raise UnsupportedAlgorithm("alg is not the algorithm pinned to this key")
        payload_bytes = b64url_decode(payload)
        if payload_bytes is None:
            raise MalformedToken("payload is not canonical base64url")
        sig = b64url_decode(signature)
        if sig is None:
            raise MalformedToken("signature is not canonical base64url")
        _check_signature(
            key, f"{head}.{payload}".encode("ascii"), sig, require_low_s=self.require_low_s
        )
        claims = _json_object(payload_bytes, "payload")
        result = check_claims(claims, header=header, raw=token)
        self._check_expectations(result, subject)
        return result

    def _check_expectations(self, token: DiscountToken, subject: str | None) -> None:
        if token.iss != self.issuer:
            raise WrongIssuer("iss is not the expected issuer")
        aud = token.aud
        if (aud != self.audience) if isinstance(aud, str) else (self.audience not in aud):
            raise WrongAudience("aud does not name this verifier's audience")
        now = self._clock()
        if token.exp <= now - self.leeway:
            raise TokenExpired("token has expired")
        if token.nbf is not None and token.nbf > now + self.leeway:
            raise TokenNotYetValid("token is not valid yet (nbf)")
        if token.iat > now + self.leeway:
            raise TokenNotYetValid("token was issued in the future (iat)")
        if subject is not None and token.sub != subject:
            raise WrongSubject("sub is not the expected subject")


def _as_key_set(keys: KeySet | Mapping[str, Any]) -> KeySet:
    return keys if isinstance(keys, KeySet) else KeySet.from_jwks(keys)


class TokenVerifier(_VerifierCore):
    """Verifies discount tokens offline against trusted keys.

    Args:
        keys: a JWKS mapping, a `KeySet`, or a `KeySource` such as `RemoteKeySet`.
        issuer: the exact ``iss`` to accept.
        audience: this verifier's identity; ``aud`` must be it or contain it.
        leeway: clock skew tolerated on exp/nbf/iat (seconds or timedelta, <= 1 h).
        max_token_bytes: longer tokens fail with `TokenTooLarge` unparsed.
        clock: returns the current Unix (wall-clock) time used for exp/nbf/iat;
            default `time.time`; for tests.
        require_low_s: strict mode: refuse ES256 signatures whose ``s`` is above
            n/2. Off by default: RFC 7518 has no such rule, so tokens from standard
            JOSE libraries verify; the twin ``n - s`` has the same ``jti``.

    Raises:
        ConfigurationError: bad arguments; `KeyLoadError` for a bad JWKS.
    """

    def __init__(
        self,
        keys: KeySet | Mapping[str, Any] | KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: float | dt.timedelta = 30.0,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        clock: Callable[[], float] | None = None,
        require_low_s: bool = False,
    ) -> None:
        super().__init__(
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            clock=clock,
            require_low_s=require_low_s,
        )
        if isinstance(keys, KeySet | Mapping):
            self._source: KeySource = _StaticKeys(_as_key_set(keys))
        elif callable(getattr(keys, "get_key", None)) and not _is_async_source(keys):
            self._source = keys
        else:
            raise ConfigurationError(
                "keys must be a JWKS mapping, a KeySet or a synchronous key source "
                "(use AsyncTokenVerifier for AsyncRemoteKeySet)"
            )

    @classmethod
    def from_jwks_url(
        cls,
        url: str,
        *,
        issuer: str,
        audience: str,
        leeway: float | dt.timedelta = 30.0,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        token_clock: Callable[[], float] | None = None,
        cache_clock: Callable[[], float] | None = None,
        require_low_s: bool = False,
        **remote: Any,
    ) -> TokenVerifier:
        """A verifier whose keys come from a cached remote JWKS (`RemoteKeySet`).

        Two clocks, named apart so a test clock never lands in the wrong place:
        ``token_clock`` is the wall clock for exp/nbf/iat (the constructor's
        ``clock``), ``cache_clock`` the monotonic clock of the JWKS cache
        (`RemoteKeySet`'s ``clock``). A bare ``clock=`` is refused as ambiguous.
        Other ``remote`` arguments go to `RemoteKeySet` (``client``, ``cooldown``, ...).

        Raises:
            ConfigurationError: bad arguments, or ``clock=``.
        """
        from .jwks_cache import RemoteKeySet

        _refuse_ambiguous_clock(remote)
        return cls(
            RemoteKeySet(url, clock=cache_clock, **remote),
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            clock=token_clock,
            require_low_s=require_low_s,
        )

    def verify(self, token: str | bytes, *, subject: str | None = None) -> DiscountToken:
        """Verify a compact token and return its typed claims.

        Args:
            token: the compact JWS.
            subject: when given, ``sub`` must equal it (the caller's user id).

        Raises:
            TokenError: always a subclass naming the failure; nothing else escapes.
        """
        try:
            raw, head, payload, signature, kid = self._split(token)
            key = self._source.get_key(kid)
            return self._finish(raw, head, payload, signature, key, subject)
        except TokenError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError):
            # A safety net: a bug here must still surface as a typed, secret-free error.
            raise MalformedToken("token could not be processed") from None


def _refuse_ambiguous_clock(remote: Mapping[str, Any]) -> None:
    if "clock" in remote:
        raise ConfigurationError(
            "from_jwks_url takes token_clock= (wall clock for exp/nbf/iat) or "
            "cache_clock= (monotonic clock of the JWKS cache), not clock="
        )


def _is_async_source(keys: object) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(keys, "get_key", None))


class AsyncTokenVerifier(_VerifierCore):
    """`TokenVerifier` for asyncio code: key fetches never block the event loop.

    ``keys`` may also be an `AsyncRemoteKeySet`; signature checks are CPU work
    of ~0.1 ms and run inline. Same arguments and errors as `TokenVerifier`.
    """

    def __init__(
        self,
        keys: KeySet | Mapping[str, Any] | AsyncKeySource,
        *,
        issuer: str,
        audience: str,
        leeway: float | dt.timedelta = 30.0,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        clock: Callable[[], float] | None = None,
        require_low_s: bool = False,
    ) -> None:
        super().__init__(
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            clock=clock,
            require_low_s=require_low_s,
        )
        self._static: _StaticKeys | None = None
        self._source: AsyncKeySource | None = None
        if isinstance(keys, KeySet | Mapping):
            self._static = _StaticKeys(_as_key_set(keys))
        elif _is_async_source(keys):
            self._source = keys
        else:
            raise ConfigurationError("keys must be a JWKS mapping, a KeySet or an async key source")

    @classmethod
    def from_jwks_url(
        cls,
        url: str,
        *,
        issuer: str,
        audience: str,
        leeway: float | dt.timedelta = 30.0,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        token_clock: Callable[[], float] | None = None,
        cache_clock: Callable[[], float] | None = None,
        require_low_s: bool = False,
        **remote: Any,
    ) -> AsyncTokenVerifier:
        """A verifier whose keys come from a cached remote JWKS (`AsyncRemoteKeySet`).

        Same arguments as `TokenVerifier.from_jwks_url` (``token_clock`` and
        ``cache_clock``; a bare ``clock=`` is refused).
        """
        from .jwks_cache import AsyncRemoteKeySet

        _refuse_ambiguous_clock(remote)
        return cls(
            AsyncRemoteKeySet(url, clock=cache_clock, **remote),
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
            clock=token_clock,
            require_low_s=require_low_s,
        )

    async def verify(self, token: str | bytes, *, subject: str | None = None) -> DiscountToken:
        """Verify a compact token; see `TokenVerifier.verify`."""
        try:
            raw, head, payload, signature, kid = self._split(token)
            if self._static is not None:
                key = self._static.get_key(kid)
            else:
                assert self._source is not None
                key = await self._source.get_key(kid)
            return self._finish(raw, head, payload, signature, key, subject)
        except TokenError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError):
            raise MalformedToken("token could not be processed") from None
