from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from errdiscount_sdk import (
    Compensation,
    ConfigurationError,
    KeyRing,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
    jwk_thumbprint,
)
from tests.support.token_helpers import AUDIENCE, ISSUER, P256_N, issuer_for, key_for

COMP = Compensation("coupon", 5, "USD")


def _parts(token: str) -> tuple[dict[str, object], dict[str, object], bytes]:
    head, body, sig = token.split(".")

    def dec(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    return json.loads(dec(head)), json.loads(dec(body)), dec(sig)


def _issue(issuer: TokenIssuer, **kwargs: object) -> str:
    args: dict[str, object] = {
        "subject": "u1",
        "error_code": "PAY_001",
        "category": "network",
        "severity": "minor",
        "compensation": COMP,
    }
    args.update(kwargs)
    return issuer.issue(**args)  # type: ignore[arg-type]


def test_claims_and_header() -> None:
    issuer = issuer_for(clock=lambda: 1_700_000_000.5)
    header, claims, _ = _parts(_issue(issuer, ttl=dt.timedelta(hours=2), segment="regular"))
    assert header == {"alg": "EdDSA", "kid": issuer.signing_key.kid, "typ": "errdiscount+jwt"}
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "u1"
    assert claims["iat"] == 1_700_000_000
    assert claims["exp"] == 1_700_007_200
    assert claims["err"] == {"code": "PAY_001", "category": "network", "severity": "minor"}
    assert claims["comp"] == {"kind": "coupon", "amount": 5, "unit": "USD"}
    assert claims["seg"] == "regular"
    assert "nbf" not in claims
    assert "incident" not in claims


def test_jti_is_random_128_bit_urlsafe() -> None:
    issuer = issuer_for()
    jtis = {_parts(_issue(issuer))[1]["jti"] for _ in range(200)}
    assert len(jtis) == 200
    for jti in jtis:
        assert isinstance(jti, str)
        assert len(base64.urlsafe_b64decode(jti + "==")) == 16


def test_es256_signatures_are_low_s() -> None:
    issuer = issuer_for("ES256")
    for _ in range(40):
        sig = _parts(_issue(issuer))[2]
        assert len(sig) == 64
        assert int.from_bytes(sig[32:], "big") <= P256_N // 2


def test_jwks_is_public_only() -> None:
    jwks = issuer_for("RS256").jwks()
    (jwk,) = jwks["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}


def test_bare_cryptography_key_with_kid_and_algorithm_guard() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    issuer = TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE, kid="2026-01")
    assert issuer.signing_key.kid == "2026-01"
    default = TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE)
    assert default.signing_key.kid == jwk_thumbprint(private.public_key())
    with pytest.raises(ConfigurationError, match="does not fit"):
        TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE, algorithm="RS256")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": ""},
        {"error_code": "bad code!"},
        {"category": "cosmic"},
        {"severity": "meh"},
        {"compensation": {"kind": "coupon", "amount": 0, "unit": "USD"}},
        {"compensation": {"kind": "coupon", "amount": 1, "unit": "days"}},
        {"ttl": 0},
        {"ttl": dt.timedelta(days=400)},
        {"segment": "vip"},
        {"terms": "http://insecure.example"},
        {"incident": "has space"},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        _issue(issuer_for(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"issuer": ""}, {"audience": "a" * 300}, {"default_ttl": -1}])
def test_bad_constructor_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"issuer": ISSUER, "audience": AUDIENCE}
    args.update(kwargs)
    with pytest.raises(ConfigurationError):
        TokenIssuer(key_for("EdDSA"), **args)  # type: ignore[arg-type]


def test_key_ring_caps_ttl_and_signs_with_the_active_key() -> None:
    ring = KeyRing(generate_signing_key(), max_token_ttl=dt.timedelta(days=1))
    with pytest.raises(ConfigurationError, match="max_token_ttl"):
        TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE)  # default 30 days > 1 day
    issuer = TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, default_ttl=3600)
    with pytest.raises(ConfigurationError):
        _issue(issuer, ttl=dt.timedelta(days=2))
    new = ring.rotate()
    header, _, _ = _parts(_issue(issuer))
    assert header["kid"] == new.kid
    assert {k["kid"] for k in issuer.jwks()["keys"]} == {new.kid, ring.published()[1].kid}


def test_issued_token_verifies_with_audience_override() -> None:
    issuer = issuer_for()
    token = _issue(issuer, audience="https://other.example", not_before=0)
    result = TokenVerifier(issuer.jwks(), issuer=ISSUER, audience="https://other.example").verify(
        token
    )
    assert result.nbf == 0
    assert "kid=" in repr(issuer)
    assert "PRIVATE" not in repr(issuer)


def test_care_flags_become_true_claims_only_when_set() -> None:
    issuer = issuer_for("EdDSA")
    _, flagged, _ = _parts(_issue(issuer, priority=True, support_flag=True))
    assert (flagged["priority"], flagged["support_flag"]) == (True, True)
    _, plain, _ = _parts(_issue(issuer))
    assert "priority" not in plain and "support_flag" not in plain
    with pytest.raises(ConfigurationError, match="priority"):
        _issue(issuer, priority="yes")
