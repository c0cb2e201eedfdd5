from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errdiscount_sdk import (
    AsyncTokenVerifier,
    ConfigurationError,
    DiscountToken,
    ErrorCategory,
    InvalidSignature,
    KeyLoadError,
    KeyRing,
    KeySet,
    MalformedToken,
    Severity,
    TokenError,
    TokenExpired,
    TokenIssuer,
    TokenNotYetValid,
    TokenVerifier,
    UnknownKey,
    generate_signing_key,
)
from tests.support.token_helpers import AUDIENCE, ISSUER, claims, forge, issuer_for, key_for

COMP = {"kind": "membership_extension", "amount": 30, "unit": "days"}


def _issue(issuer: TokenIssuer, **kwargs: object) -> str:
    args: dict[str, object] = {
        "subject": "user-42",
        "error_code": "PAY_001",
        "category": ErrorCategory.BUSINESS,
        "severity": Severity.MODERATE,
        "compensation": COMP,
    }
    args.update(kwargs)
    return issuer.issue(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_round_trip(alg: str) -> None:
    issuer = issuer_for(alg)
    token = _issue(issuer, segment="high_value", incident="INC-7", terms="https://t.example/x")
    verifier = TokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE)
    result = verifier.verify(token, subject="user-42")
    assert isinstance(result, DiscountToken)
    assert (result.alg, result.kid, result.typ) == (alg, issuer.signing_key.kid, "errdiscount+jwt")
    assert result.compensation.kind == "membership_extension"
    assert result.compensation.amount == 30
    assert result.error.category is ErrorCategory.BUSINESS
    assert result.error.severity is Severity.MODERATE
    assert (result.segment, result.incident, result.terms) == (
        "high_value",
        "INC-7",
        "https://t.example/x",
    )
    assert result.expires_at.tzinfo is dt.UTC
    assert result.expires_at - result.issued_at == dt.timedelta(days=30)
    assert result.raw == token
    assert token not in repr(result)


def test_bytes_token_and_keyset_argument() -> None:
    issuer = issuer_for()
    token = _issue(issuer)
    verifier = TokenVerifier(KeySet([issuer.signing_key]), issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(token.encode()).sub == "user-42"


def test_leeway_and_injected_clock() -> None:
    issuer = issuer_for()
    token = _issue(issuer, ttl=60)
    result = TokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE).verify(token)
    for leeway, offset, ok in [(0, 59, True), (0, 60, False), (30, 89, True), (30, 90, False)]:
        verifier = TokenVerifier(
            issuer.jwks(),
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway=dt.timedelta(seconds=leeway),
            clock=lambda o=offset: result.iat + o,
        )
        if ok:
            verifier.verify(token)
        else:
            with pytest.raises(TokenExpired):
                verifier.verify(token)


def test_not_before_respects_leeway() -> None:
    issuer = issuer_for()
    token = forge(key_for("EdDSA"), None, claims(iat=1000, nbf=2000, exp=5000))
    jwks = issuer.jwks()
    with pytest.raises(TokenNotYetValid):
        TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, leeway=0, clock=lambda: 1999).verify(
            token
        )
    TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, leeway=5, clock=lambda: 1996).verify(
        token
    )


def test_audience_list_containing_us() -> None:
    token = forge(key_for("EdDSA"), None, claims(aud=["https://other", AUDIENCE]))
    result = TokenVerifier(issuer_for().jwks(), issuer=ISSUER, audience=AUDIENCE).verify(token)
    assert result.aud == ("https://other", AUDIENCE)


def test_rotation_old_tokens_verify_while_published() -> None:
    now = [1_000_000.0]
    ring = KeyRing(
        generate_signing_key(), max_token_ttl=dt.timedelta(hours=1), clock=lambda: now[0]
    )
    issuer = TokenIssuer(
        ring, issuer=ISSUER, audience=AUDIENCE, default_ttl=3600, clock=lambda: now[0]
    )
    old_token = _issue(issuer)
    old_kid = ring.active.kid
    ring.rotate()
    new_token = _issue(issuer)
    assert ring.active.kid != old_kid

    def verifier() -> TokenVerifier:
        return TokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0])

    assert verifier().verify(old_token).kid == old_kid
    assert verifier().verify(new_token).kid == ring.active.kid
    now[0] += 3601  # the retired key's tokens have all expired: it leaves the JWKS
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [ring.active.kid]
    with pytest.raises(UnknownKey):
        verifier().verify(old_token)


def test_token_signed_by_unpublished_key_is_unknown() -> None:
    stranger = TokenIssuer(generate_signing_key(), issuer=ISSUER, audience=AUDIENCE)
    verifier = TokenVerifier(issuer_for().jwks(), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(UnknownKey):
        verifier.verify(_issue(stranger))


def test_tampered_signature_bit() -> None:
    issuer = issuer_for()
    token = _issue(issuer)
    head, body, sig = token.split(".")
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    with pytest.raises(InvalidSignature):
        TokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE).verify(
            f"{head}.{body}.{flipped}"
        )


@pytest.mark.parametrize(
    "kwargs",
    [{"issuer": ""}, {"audience": ""}, {"leeway": -1}, {"leeway": 7200}, {"max_token_bytes": 10}],
)
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"issuer": ISSUER, "audience": AUDIENCE}
    args.update(kwargs)
    with pytest.raises(ConfigurationError):
        TokenVerifier(issuer_for().jwks(), **args)  # type: ignore[arg-type]


def test_bad_jwks_is_a_key_load_error() -> None:
    with pytest.raises(KeyLoadError):
        TokenVerifier({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, issuer=ISSUER, audience=AUDIENCE)


def test_max_token_bytes_is_honoured() -> None:
    issuer = issuer_for()
    token = _issue(issuer)
    small = TokenVerifier(
        issuer.jwks(), issuer=ISSUER, audience=AUDIENCE, max_token_bytes=len(token) - 1
    )
    with pytest.raises(MalformedToken):
        small.verify(token)


async def test_async_verifier_with_static_keys() -> None:
    issuer = issuer_for("ES256")
    verifier = AsyncTokenVerifier(issuer.jwks(), issuer=ISSUER, audience=AUDIENCE)
    result = await verifier.verify(_issue(issuer), subject="user-42")
    assert result.alg == "ES256"
    with pytest.raises(MalformedToken):
        await verifier.verify("nope")


def test_async_source_refused_by_sync_verifier() -> None:
    class AsyncSource:
        async def get_key(self, kid: str) -> object:  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(ConfigurationError):
        TokenVerifier(AsyncSource(), issuer=ISSUER, audience=AUDIENCE)  # type: ignore[arg-type]


_VERIFIER = TokenVerifier(issuer_for().jwks(), issuer=ISSUER, audience=AUDIENCE)
_VALID = _issue(issuer_for())
_B64 = string.ascii_letters + string.digits + "-_=.+/ "


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.text(max_size=300), st.binary(max_size=300), st.text(alphabet=_B64, max_size=300))
)
def test_fuzz_only_token_errors(value: str | bytes) -> None:
    with pytest.raises(TokenError):
        _VERIFIER.verify(value)


@settings(max_examples=300)
@given(st.integers(0, len(_VALID) - 1), st.sampled_from([*list(_B64), "é", "\x00"]))
def test_fuzz_mutated_valid_token(position: int, char: str) -> None:
    mutated = _VALID[:position] + char + _VALID[position + 1 :]
    try:
        result = _VERIFIER.verify(mutated)
    except TokenError:
        return
    # Only a no-op substitution may verify: one token, one spelling.
    assert mutated == _VALID
    assert result.raw == _VALID


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
)
def test_fuzz_signed_payloads_of_any_shape(value: object) -> None:
    import json

    token = forge(key_for("EdDSA"), None, json.dumps(value).encode())
    with pytest.raises(TokenError):
        _VERIFIER.verify(token)
