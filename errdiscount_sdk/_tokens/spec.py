"""Discount token format v1: constants, claim models and the claim rules.

The issuer and the verifier both use `check_claims`, so a token the issuer
mints always satisfies the rules the verifier enforces (docs/token-spec.md).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._model.enums import ErrorCategory, Severity
from .._model.errors import InvalidClaims

__all__ = [
    "ALGORITHMS",
    "COMPENSATION_KINDS",
    "SEGMENTS",
    "TOKEN_TYPE",
    "Compensation",
    "DiscountToken",
    "TokenErrorInfo",
    "check_claims",
    "check_compensation",
]

TOKEN_TYPE = "errdiscount+jwt"
"""The ``typ`` header of every discount token (explicit typing, RFC 8725 §3.11)."""

ALGORITHMS = ("EdDSA", "ES256", "RS256")
"""Signature algorithms of format v1; EdDSA (Ed25519) is the default."""

COMPENSATION_KINDS = frozenset(
    {
        "coupon",
        "points",
        "membership_extension",
        "trial_extension",
        "service_credit",
        "retry_chance",
    }
)
SEGMENTS = frozenset({"high_value", "regular", "new"})

# Which units make sense for which kind: money for coupons, days for time.
_CURRENCY = re.compile(r"[A-Z]{3}")
_UNITS_BY_KIND: dict[str, tuple[str, ...]] = {
    "coupon": ("currency",),
    "points": ("points",),
    "membership_extension": ("days",),
    "trial_extension": ("days",),
    "service_credit": ("currency", "days"),
    "retry_chance": ("days",),
}
_MAX_AMOUNT = 1_000_000_000
_MAX_TIME = 2**40  # far beyond any real NumericDate, small enough for datetime
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_IDENT = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_JTI = re.compile(r"[A-Za-z0-9_\-]{16,128}")
_MAX_STRING = 256
_MAX_URL = 2048
_MAX_AUDIENCES = 16
_CATEGORIES = [c.value for c in ErrorCategory]
_SEVERITIES = [s.value for s in Severity]


@attrs.frozen
class Compensation:
    """What the user gets: ``amount`` of ``unit`` as a ``kind`` of compensation.

    Attributes:
        kind: one of `COMPENSATION_KINDS`.
        amount: a finite number > 0.
        unit: an ISO 4217 currency code (``USD``), ``points`` or ``days``,
            as the kind requires (see docs/token-spec.md).
    """

    kind: str
    amount: int | float
    unit: str

    def to_claim(self) -> dict[str, Any]:
        return {"kind": self.kind, "amount": self.amount, "unit": self.unit}


@attrs.frozen
class TokenErrorInfo:
    """The ``err`` claim: which API error the compensation is for."""

    code: str
    category: ErrorCategory
    severity: Severity

    def to_claim(self) -> dict[str, Any]:
        return {"code": self.code, "category": self.category.value, "severity": self.severity.value}


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@attrs.frozen
class DiscountToken:
    """A verified discount token. Built by `TokenVerifier`; every field is checked.

    ``jti`` is the redemption key: redeem by ``jti``, never by the token string.
    ``raw`` (the compact token) is kept out of ``repr``.
    """

    kid: str
    alg: str
    typ: str
    iss: str
    sub: str
    aud: str | tuple[str, ...]
    iat: int
    exp: int
    jti: str
    error: TokenErrorInfo
    compensation: Compensation
    nbf: int | None = None
    segment: str | None = None
    incident: str | None = None
    terms: str | None = None
    alert: str | None = None
    #: care flags of the compensation policy (high-value users): handle this user's
    #: compensation first / open a support follow-up. Claims present only when true.
    priority: bool = False
    support_flag: bool = False
    raw: str = attrs.field(default="", repr=False)

    @property
    def issued_at(self) -> dt.datetime:
        return _utc(self.iat)

    @property
    def expires_at(self) -> dt.datetime:
        return _utc(self.exp)

    @property
    def not_before(self) -> dt.datetime | None:
        return None if self.nbf is None else _utc(self.nbf)

    def claims(self) -> dict[str, Any]:
        """The claims as JSON-ready data (what the payload carried, minus unknowns)."""
        out: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud if isinstance(self.aud, str) else list(self.aud),
            "iat": self.iat,
            "exp": self.exp,
            "jti": self.jti,
            "err": self.error.to_claim(),
            "comp": self.compensation.to_claim(),
        }
        optional = {
            "nbf": self.nbf,
            "seg": self.segment,
            "incident": self.incident,
            "terms": self.terms,
            "alert": self.alert,
            "priority": self.priority or None,
            "support_flag": self.support_flag or None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


def _fail(error: type[Exception], claim: str, why: str) -> Exception:
    return error(f"claim {claim!r} {why}")


def _string(claims: Mapping[str, Any], name: str, error: type[Exception]) -> str:
    value = claims.get(name)
    if value is None:
        raise _fail(error, name, "is missing")
    if type(value) is not str or not value or len(value) > _MAX_STRING:
        raise _fail(error, name, f"must be a non-empty string of at most {_MAX_STRING} characters")
    return value


def _time(claims: Mapping[str, Any], name: str, error: type[Exception]) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    # Integers only: NumericDate with fractions is legal JWT, but one form is simpler to audit.
    if type(value) is not int or not 0 <= value < _MAX_TIME:
        raise _fail(error, name, "must be an integer NumericDate (seconds since the epoch)")
    return value


def _required_time(claims: Mapping[str, Any], name: str, error: type[Exception]) -> int:
    value = _time(claims, name, error)
    if value is None:
        raise _fail(error, name, "is missing")
    return value


def _pattern(value: Any, pattern: re.Pattern[str], name: str, error: type[Exception]) -> str:
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise _fail(error, name, f"must match {pattern.pattern}")
    return value


def check_https_url(value: Any, name: str, error: type[Exception] = InvalidClaims) -> str:
    """An absolute https URL with a host and no credentials, at most 2048 characters."""
    if type(value) is not str or not value or len(value) > _MAX_URL or not value.isascii():
        raise _fail(error, name, "must be an https URL of at most 2048 ASCII characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises on a malformed port
    except ValueError:
        raise _fail(error, name, "is not a valid URL") from None
    if (
        parts.scheme != "https"
        or not host
        or "@" in parts.netloc
        or any(c.isspace() for c in value)
    ):
        raise _fail(error, name, "must be an https URL with a host and no credentials")
    return value


def check_compensation(
    value: Any, error: type[Exception] = InvalidClaims, name: str = "comp"
) -> Compensation:
    """Validate a ``comp`` object (closed: no other members) into a `Compensation`."""
    if isinstance(value, Compensation):
        value = value.to_claim()
    if not isinstance(value, Mapping):
        raise _fail(error, name, "must be an object with kind, amount and unit")
    extra = set(value) - {"kind", "amount", "unit"}
    if extra:
        raise _fail(error, name, f"has unknown members {sorted(extra)}")
    kind = value.get("kind")
    # type first: a JSON object or array as kind is unhashable, not a TypeError to leak
    if type(kind) is not str or kind not in COMPENSATION_KINDS:
        raise _fail(error, f"{name}.kind", f"must be one of {sorted(COMPENSATION_KINDS)}")
    amount: Any = value.get("amount")
    if (
        type(amount) not in (int, float)
        or not math.isfinite(amount)
        or not 0 < amount <= _MAX_AMOUNT
    ):
        raise _fail(error, f"{name}.amount", f"must be a number > 0 and <= {_MAX_AMOUNT}")
    unit = value.get("unit")
    if type(unit) is not str:
        raise _fail(error, f"{name}.unit", "must be a string")
    unit_class = "currency" if _CURRENCY.fullmatch(unit) else unit
    allowed = _UNITS_BY_KIND[kind]
    if unit_class not in allowed:
        shown = " or ".join("an ISO 4217 code" if a == "currency" else repr(a) for a in allowed)
        raise _fail(error, f"{name}.unit", f"must be {shown} for kind {kind!r}")
    return Compensation(kind=kind, amount=amount, unit=unit)


def check_error_info(value: Any, error: type[Exception] = InvalidClaims) -> TokenErrorInfo:
    """Validate an ``err`` object (closed: code, category, severity)."""
    if not isinstance(value, Mapping):
        raise _fail(error, "err", "must be an object with code, category and severity")
    extra = set(value) - {"code", "category", "severity"}
    if extra:
        raise _fail(error, "err", f"has unknown members {sorted(extra)}")
    code = _pattern(value.get("code"), _ERROR_CODE, "err.code", error)
    category = value.get("category")
    if type(category) is not str or category not in _CATEGORIES:
        raise _fail(error, "err.category", f"must be one of {_CATEGORIES}")
    severity = value.get("severity")
    if type(severity) is not str or severity not in _SEVERITIES:
        raise _fail(error, "err.severity", f"must be one of {_SEVERITIES}")
    return TokenErrorInfo(code=code, category=ErrorCategory(category), severity=Severity(severity))


def _audience(value: Any, error: type[Exception]) -> str | tuple[str, ...]:
    if value is None:
        raise _fail(error, "aud", "is missing")
    if type(value) is str and value and len(value) <= _MAX_STRING:
        return value
    if (
        type(value) is list
        and 0 < len(value) <= _MAX_AUDIENCES
        and all(type(a) is str and a and len(a) <= _MAX_STRING for a in value)
    ):
        return tuple(value)
    raise _fail(error, "aud", "must be a non-empty string or a short list of them")


def _flag(claims: Mapping[str, Any], name: str, error: type[Exception]) -> bool:
    value = claims.get(name)
    if value is None:
        return False
    if type(value) is not bool:
        raise _fail(error, name, "must be true or false")
    return value


def check_claims(
    claims: Mapping[str, Any],
    *,
    header: Mapping[str, Any],
    raw: str = "",
    error: type[Exception] = InvalidClaims,
) -> DiscountToken:
    """Check types and values of every v1 claim and build the `DiscountToken`.

    Unknown top-level claims are ignored (RFC 7519 §4); ``err`` and ``comp``
    are closed objects. This does not check time, issuer, audience or subject
    against expectations; the verifier does.

    Raises:
        InvalidClaims (or ``error``): naming the first bad claim.
    """
    iat = _required_time(claims, "iat", error)
    exp = _required_time(claims, "exp", error)
    if exp <= iat:
        raise _fail(error, "exp", "must be after iat")
    seg = claims.get("seg")
    if seg is not None and (type(seg) is not str or seg not in SEGMENTS):
        raise _fail(error, "seg", f"must be one of {sorted(SEGMENTS)}")
    incident = claims.get("incident")
    terms = claims.get("terms")
    alert = claims.get("alert")
    return DiscountToken(
        kid=header["kid"],
        alg=header["alg"],
        typ=header["typ"],
        iss=_string(claims, "iss", error),
        sub=_string(claims, "sub", error),
        aud=_audience(claims.get("aud"), error),
        iat=iat,
        exp=exp,
        nbf=_time(claims, "nbf", error),
        jti=_pattern(claims.get("jti"), _JTI, "jti", error),
        error=check_error_info(claims.get("err"), error),
        compensation=check_compensation(claims.get("comp"), error),
        segment=seg,
        incident=None if incident is None else _pattern(incident, _IDENT, "incident", error),
        terms=None if terms is None else check_https_url(terms, "terms", error),
        alert=None if alert is None else check_https_url(alert, "alert", error),
        priority=_flag(claims, "priority", error),
        support_flag=_flag(claims, "support_flag", error),
        raw=raw,
    )
