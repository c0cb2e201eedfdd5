from __future__ import annotations

import datetime as dt

import attrs
import pytest

from errdiscount_sdk import (
    Compensation,
    ConfigurationError,
    DiscountToken,
    ErrorCategory,
    InvalidClaims,
    Severity,
    TokenErrorInfo,
)
from errdiscount_sdk._tokens.spec import (
    ALGORITHMS,
    TOKEN_TYPE,
    check_claims,
    check_compensation,
    check_https_url,
)
from tests.support.token_helpers import DROP, claims

HEADER = {"alg": "EdDSA", "kid": "k1", "typ": TOKEN_TYPE}


def test_constants() -> None:
    assert TOKEN_TYPE == "errdiscount+jwt"
    assert ALGORITHMS == ("EdDSA", "ES256", "RS256")


def test_check_claims_builds_a_typed_token() -> None:
    data = claims(seg="new", incident="INC-1", nbf=5, alert="https://status.example.com/i/1")
    token = check_claims(data, header=HEADER, raw="a.b.c")
    assert token.error == TokenErrorInfo("PAY_001", ErrorCategory.NETWORK, Severity.MINOR)
    assert token.compensation == Compensation("coupon", 2, "USD")
    assert token.not_before == dt.datetime(1970, 1, 1, 0, 0, 5, tzinfo=dt.UTC)
    assert token.claims() == data
    assert "a.b.c" not in repr(token)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        token.sub = "x"  # type: ignore[misc]


def test_unknown_top_level_claims_are_ignored() -> None:
    token = check_claims(claims(extra={"anything": 1}), header=HEADER)
    assert "extra" not in token.claims()


@pytest.mark.parametrize(
    ("kind", "unit", "ok"),
    [
        ("coupon", "EUR", True),
        ("coupon", "points", False),
        ("points", "points", True),
        ("points", "USD", False),
        ("membership_extension", "days", True),
        ("trial_extension", "days", True),
        ("trial_extension", "USD", False),
        ("service_credit", "USD", True),
        ("service_credit", "days", True),
        ("service_credit", "points", False),
        ("retry_chance", "days", True),
        ("retry_chance", "USD", False),
    ],
)
def test_units_fit_kinds(kind: str, unit: str, ok: bool) -> None:
    value = {"kind": kind, "amount": 1.5, "unit": unit}
    if ok:
        assert check_compensation(value).unit == unit
    else:
        with pytest.raises(InvalidClaims, match="unit"):
            check_compensation(value)


def test_check_compensation_error_class_is_configurable() -> None:
    with pytest.raises(ConfigurationError, match="amount"):
        check_compensation(
            {"kind": "coupon", "amount": float("inf"), "unit": "USD"}, ConfigurationError
        )
    assert check_compensation(Compensation("points", 10, "points")).amount == 10


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://",
        "https:///path",
        "https://user@example.com",
        "https://example.com/a b",
        "https://example.com:99999/",
        "ftp://example.com",
        "https://exämple.com",
        "https://example.com/" + "a" * 2100,
        42,
    ],
)
def test_https_url_rules(url: object) -> None:
    with pytest.raises(InvalidClaims):
        check_https_url(url, "terms")


def test_https_url_accepts_plain_https() -> None:
    assert check_https_url("https://example.com:8443/t?x=1#f", "terms")


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "iat", "exp", "jti", "err", "comp"])
def test_required_claims(claim: str) -> None:
    with pytest.raises(InvalidClaims, match=f"'{claim}'"):
        check_claims(claims(**{claim: DROP}), header=HEADER)


def test_discount_token_is_slotted_and_hashable() -> None:
    token = check_claims(claims(), header=HEADER)
    assert isinstance(token, DiscountToken)
    assert hash(token) == hash(check_claims(claims(), header=HEADER))


def test_worked_example_in_the_spec_verifies() -> None:
    import json
    import re
    from pathlib import Path

    from errdiscount_sdk import TokenExpired, TokenVerifier

    text = (Path(__file__).resolve().parents[2] / "docs" / "token-spec.md").read_text()
    jwks = json.loads(re.search(r"```json jwks\n(.*?)```", text, re.S).group(1))
    token = re.search(r"```text token\n(.*?)\n```", text, re.S).group(1)
    args = {"issuer": "https://api.example.com", "audience": "https://redeem.example.com"}
    result = TokenVerifier(jwks, **args, clock=lambda: 1767225700).verify(token, subject="user-42")
    assert result.jti == "wPbwEetZrMeudblrc1YSkg"
    assert result.expires_at.isoformat() == "2026-01-31T00:00:00+00:00"
    assert f"{len(token)} characters" in text
    with pytest.raises(TokenExpired):
        TokenVerifier(jwks, **args, clock=lambda: 1769817600 + 31).verify(token)


def test_care_flags_are_booleans() -> None:
    token = check_claims(claims(priority=True, support_flag=True), header=HEADER)
    assert (token.priority, token.support_flag) == (True, True)
    assert token.claims()["priority"] is True
    absent = check_claims(claims(), header=HEADER)
    assert (absent.priority, absent.support_flag) == (False, False)
    assert "priority" not in absent.claims()
    for bad in (1, "true", None.__class__):
        with pytest.raises(InvalidClaims, match="support_flag"):
            check_claims(claims(support_flag=bad), header=HEADER)


def test_unhashable_kind_or_segment_is_a_claims_error_not_a_type_error() -> None:
    with pytest.raises(InvalidClaims, match=r"comp\.kind"):
        check_compensation({"kind": {}, "amount": 1, "unit": "points"})
    with pytest.raises(InvalidClaims, match="seg"):
        check_claims(claims(seg=["high_value"]), header=HEADER)
