"""`TokenIssuer`: mints discount tokens (format v1) for an API provider."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .._model.enums import ErrorCategory, Severity
from .._model.errors import ConfigurationError, InvalidClaims
from .keys import KeyRing, PrivateKey, SigningKey, b64url_encode
from .spec import TOKEN_TYPE, Compensation, check_claims, check_compensation
from .verifier import P256_ORDER

__all__ = ["TokenIssuer"]

_MAX_TTL = dt.timedelta(days=366)


def _ttl_seconds(ttl: float | dt.timedelta) -> int:
    seconds = ttl.total_seconds() if isinstance(ttl, dt.timedelta) else float(ttl)
    if not 1 <= seconds <= _MAX_TTL.total_seconds():
        raise ConfigurationError("ttl must be between 1 second and 366 days")
    return int(seconds)


def _sign(key: SigningKey, data: bytes) -> bytes:
    private = key.private_key
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(data)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        # Low-S normal form: the verifier rejects s > n/2, so each token has one spelling.
        if s > P256_ORDER // 2:
            s = P256_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


class TokenIssuer:
    """Mints signed discount tokens.

    Args:
        private_key: a `SigningKey`, a `KeyRing` (signs with its active key and
            caps TTLs at its ``max_token_ttl``) or a cryptography private key.
        issuer: the ``iss`` claim (who pays the compensation).
        audience: the default ``aud`` claim (who redeems: the redemption service).
        kid: overrides the key id of a bare cryptography key (default: RFC 7638
            thumbprint). Ignored for `SigningKey` and `KeyRing`, which carry one.
        algorithm: if given, must be the key's algorithm (a guard, not a choice).
        default_ttl: token lifetime when ``issue`` gets no ``ttl``.
        clock: returns the current Unix time; for tests.

    Raises:
        ConfigurationError: bad arguments (`KeyLoadError` for unusable keys).
    """

    def __init__(
        self,
        private_key: SigningKey | KeyRing | PrivateKey,
        *,
        issuer: str,
        audience: str,
        kid: str | None = None,
        algorithm: str | None = None,
        default_ttl: float | dt.timedelta = dt.timedelta(days=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ring: KeyRing | None = None
        self._key: SigningKey | None = None
        if isinstance(private_key, KeyRing):
            self._ring = private_key
        elif isinstance(private_key, SigningKey):
            self._key = private_key
        else:
            self._key = SigningKey.from_private_key(private_key, kid=kid)
        if algorithm is not None and algorithm != self.signing_key.algorithm:
            raise ConfigurationError(
                f"algorithm {algorithm!r} does not fit the key ({self.signing_key.algorithm})"
            )
        for name, value in (("issuer", issuer), ("audience", audience)):
            if not _short_text(value):
                raise ConfigurationError(f"{name} must be a string of 1 to 256 characters")
        self.issuer = issuer
        self.audience = audience
        self.default_ttl = self._checked_ttl(default_ttl)
        self._clock = clock

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with (the ring's active key)."""
        if self._ring is not None:
            return self._ring.active
        assert self._key is not None
        return self._key

    def _checked_ttl(self, ttl: float | dt.timedelta) -> int:
        seconds = _ttl_seconds(ttl)
        if self._ring is not None and seconds > self._ring.max_token_ttl.total_seconds():
            raise ConfigurationError(
                "ttl exceeds the key ring's max_token_ttl (retired keys would vanish "
                "from the JWKS before their tokens expire)"
            )
        return seconds

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS to publish: the ring's published keys, or the one key."""
        if self._ring is not None:
            return self._ring.jwks()
        return {"keys": [self.signing_key.public_jwk()]}

    def issue(
        self,
        *,
        subject: str,
        error_code: str,
        category: ErrorCategory | str,
        severity: Severity | str,
        compensation: Compensation | Mapping[str, Any],
        ttl: float | dt.timedelta | None = None,
        segment: str | None = None,
        incident: str | None = None,
        terms: str | None = None,
        alert: str | None = None,
        audience: str | None = None,
        not_before: int | None = None,
        priority: bool = False,
        support_flag: bool = False,
    ) -> str:
        """Mint a token. ``jti`` is a fresh random 128-bit id (the redemption key).

        ``priority`` and ``support_flag`` are the policy's care flags for the user
        (`CompensationDecision`); each becomes a ``true`` claim when set.

        Raises:
            ConfigurationError: any argument that would give an invalid token,
                with a message naming the claim.
        """
        for name, flag in (("priority", priority), ("support_flag", support_flag)):
            if type(flag) is not bool:
                raise ConfigurationError(f"{name} must be True or False")
        now = int(self._clock())
        seconds = self.default_ttl if ttl is None else self._checked_ttl(ttl)
        category_value = category.value if isinstance(category, ErrorCategory) else category
        severity_value = severity.value if isinstance(severity, Severity) else severity
        comp = check_compensation(compensation, ConfigurationError, "compensation")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience if audience is not None else self.audience,
            "iat": now,
            "exp": now + seconds,
            "jti": secrets.token_urlsafe(16),
            "err": {"code": error_code, "category": category_value, "severity": severity_value},
            "comp": comp.to_claim(),
        }
        optional = {
            "nbf": not_before,
            "seg": segment,
            "incident": incident,
            "terms": terms,
            "alert": alert,
            # Care flags of the policy (`CompensationDecision`): only ever ``true``.
            "priority": True if priority else None,
            "support_flag": True if support_flag else None,
        }
        claims.update({k: v for k, v in optional.items() if v is not None})
        key = self.signing_key
        header = {"alg": key.algorithm, "kid": key.kid, "typ": TOKEN_TYPE}
        try:
            check_claims(claims, header=header, error=ConfigurationError)
        except InvalidClaims as exc:  # pragma: no cover - error= routes to ConfigurationError
            raise ConfigurationError(str(exc)) from None
        return self._sign_compact(header, claims)

    def _sign_compact(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """Sign header and claims with the active key; callers check them first."""
        key = self.signing_key
        head = b64url_encode(_compact_json(header))
        body = b64url_encode(_compact_json(claims))
        signing_input = f"{head}.{body}".encode("ascii")
        return f"{head}.{body}.{b64url_encode(_sign(key, signing_input))}"

    def __repr__(self) -> str:
        return f"TokenIssuer(issuer={self.issuer!r}, kid={self.signing_key.kid!r})"


def _short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 256


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")
