"""Crafted hostile tokens: every one must fail with the right `TokenError` subclass.

Each token is built here, byte by byte, so the test shows exactly what an
attacker would send. The verifier trusts an EdDSA, an ES256 and an RS256 key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from errdiscount_sdk import (
    InvalidClaims,
    InvalidSignature,
    KeySet,
    MalformedToken,
    TokenError,
    TokenExpired,
    TokenNotYetValid,
    TokenTooLarge,
    TokenVerifier,
    UnknownKey,
    UnsupportedAlgorithm,
    UnsupportedCriticalHeader,
    WrongAudience,
    WrongIssuer,
    WrongSubject,
    WrongTokenType,
)
from tests.support.token_helpers import (
    AUDIENCE,
    DROP,
    ISSUER,
    P256_N,
    b64,
    b64json,
    claims,
    forge,
    header,
    issuer_for,
    key_for,
    raw_sign,
)

ED = key_for("EdDSA")
ES = key_for("ES256")
RS = key_for("RS256")
ATTACKER = key_for("EdDSA", slot=9)  # not trusted


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    return TokenVerifier(KeySet([ED, ES, RS]), issuer=ISSUER, audience=AUDIENCE)


def _ed_public_raw() -> bytes:
    return ED.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _hs256(head: dict[str, object], secret: bytes) -> str:
    signing_input = f"{b64json(head)}.{b64json(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _with_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def _flip_trailing_bits(segment: str) -> str:
    """Same bytes, different spelling: set the unused low bits of the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}[len(segment) % 4]  # chars in the last group -> unused bits
    last = alphabet.index(segment[-1])
    assert last % (1 << unused) == 0
    return segment[:-1] + alphabet[last | 1]


def _es256_high_s(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return f"{head}.{payload}.{b64(r + (P256_N - s).to_bytes(32, 'big'))}"


# (name, token factory, expected error) -- factories so each builds its own token.
CASES: list[tuple[str, Callable[[], object], type[TokenError]]] = [
    # --- algorithm confusion
    (
        "alg none, empty signature",
        lambda: f"{b64json(header(ED, alg='none'))}.{b64json(claims())}.",
        UnsupportedAlgorithm,
    ),
    ("alg None capitalised", lambda: forge(ED, header(ED, alg="None")), UnsupportedAlgorithm),
    ("alg missing", lambda: forge(ED, header(ED, alg=DROP)), UnsupportedAlgorithm),
    ("alg not a string", lambda: forge(ED, header(ED, alg=["EdDSA"])), UnsupportedAlgorithm),
    (
        "HS256 keyed with the raw public key bytes",
        lambda: _hs256(header(ED, alg="HS256"), _ed_public_raw()),
        UnsupportedAlgorithm,
    ),
    (
        "HS256 keyed with the public JWK JSON",
        lambda: _hs256(header(ED, alg="HS256"), json.dumps(ED.public_jwk()).encode()),
        UnsupportedAlgorithm,
    ),
    (
        "HS256 keyed with the public PEM",
        lambda: _hs256(
            header(RS, alg="HS256"),
            RS.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
        UnsupportedAlgorithm,
    ),
    (
        "ES256 header on the EdDSA key's kid",
        lambda: forge(ES, header(ED, alg="ES256")),
        UnsupportedAlgorithm,
    ),
    (
        "RS256 header on the EdDSA key's kid",
        lambda: forge(RS, header(ED, alg="RS256")),
        UnsupportedAlgorithm,
    ),
    (
        "PS256, an algorithm outside v1",
        lambda: forge(RS, header(RS, alg="PS256")),
        UnsupportedAlgorithm,
    ),
    (
        "Ed25519 as alg (RFC 9864 name, not v1)",
        lambda: forge(ED, header(ED, alg="Ed25519")),
        UnsupportedAlgorithm,
    ),
    # --- key confusion and key-locating headers
    ("kid of another trusted key", lambda: forge(ATTACKER, header(ED)), InvalidSignature),
    ("kid nobody trusts", lambda: forge(ATTACKER, header(ATTACKER)), UnknownKey),
    (
        "jku pointing elsewhere",
        lambda: forge(ATTACKER, header(ATTACKER, jku="https://evil.example/jwks")),
        MalformedToken,
    ),
    (
        "x5u pointing elsewhere",
        lambda: forge(ATTACKER, header(ATTACKER, x5u="https://evil.example/cert")),
        MalformedToken,
    ),
    (
        "embedded jwk of the attacker",
        lambda: forge(ATTACKER, header(ATTACKER, jwk=ATTACKER.public_jwk())),
        MalformedToken,
    ),
    ("x5c chain", lambda: forge(ATTACKER, header(ED, x5c=["MIIB"])), MalformedToken),
    ("kid not a string", lambda: forge(ED, header(ED, kid=7)), MalformedToken),
    ("unknown header member cty", lambda: forge(ED, header(ED, cty="JWT")), MalformedToken),
    # --- explicit typing
    ("typ missing", lambda: forge(ED, header(ED, typ=DROP)), WrongTokenType),
    ("typ JWT", lambda: forge(ED, header(ED, typ="JWT")), WrongTokenType),
    ("typ of an access token", lambda: forge(ED, header(ED, typ="at+jwt")), WrongTokenType),
    # --- crit
    ("unknown crit", lambda: forge(ED, header(ED, crit=["exp"], exp=1)), MalformedToken),
    (
        "crit naming an extension we lack",
        lambda: forge(ED, header(ED, crit=["b64"])),
        UnsupportedCriticalHeader,
    ),
    ("empty crit", lambda: forge(ED, header(ED, crit=[])), MalformedToken),
    # --- integrity
    (
        "tampered payload (amount raised)",
        lambda: _with_segment(
            forge(ED), 1, b64json(claims(comp={"kind": "coupon", "amount": 2000, "unit": "USD"}))
        ),
        InvalidSignature,
    ),
    (
        "tampered header (typ member reordered)",
        lambda: _with_segment(
            forge(ED), 0, b64json({"typ": "errdiscount+jwt", "alg": ED.algorithm, "kid": ED.kid})
        ),
        InvalidSignature,
    ),
    (
        "signature truncated by one byte",
        lambda: _with_segment(
            forge(ED), 2, b64(base64.urlsafe_b64decode(forge(ED).split(".")[2] + "==")[:-1])
        ),
        InvalidSignature,
    ),
    ("signature empty", lambda: _with_segment(forge(ED), 2, ""), InvalidSignature),
    (
        "RS256 signature one byte short",
        lambda: _with_segment(forge(RS), 2, b64(b"\x01" * 383)),
        InvalidSignature,
    ),
    ("token cut to two segments", lambda: forge(ED).rsplit(".", 1)[0], MalformedToken),
    ("five segments (JWE shape)", lambda: forge(ED) + ".a.b", MalformedToken),
    # --- base64url canonical form
    (
        "padded payload",
        lambda: _with_segment(
            forge(ED), 1, forge(ED).split(".")[1] + "=" * (-len(forge(ED).split(".")[1]) % 4 or 4)
        ),
        MalformedToken,
    ),
    (
        "padded header",
        lambda: _with_segment(forge(ED), 0, b64json(header(ED)) + "=="),
        MalformedToken,
    ),
    (
        "standard-alphabet '+' in signature",
        lambda: _with_segment(
            forge(ED),
            2,
            forge(ED).split(".")[2].replace("-", "+").replace("_", "/")
            + ("" if set("-_") & set(forge(ED).split(".")[2]) else "+"),
        ),
        MalformedToken,
    ),
    (
        "non-canonical trailing bits in the signature",
        lambda: _with_segment(forge(ED), 2, _flip_trailing_bits(forge(ED).split(".")[2])),
        MalformedToken,
    ),
    (
        "whitespace inside the payload",
        lambda: _with_segment(
            forge(ED), 1, forge(ED).split(".")[1][:5] + " " + forge(ED).split(".")[1][5:]
        ),
        MalformedToken,
    ),
    # --- JSON
    ("header not JSON", lambda: forge(ED, b64(b"alg=EdDSA")), MalformedToken),
    ("payload not JSON (signed)", lambda: forge(ED, None, b"{not json"), MalformedToken),
    ("payload a JSON array (signed)", lambda: forge(ED, None, b"[1,2]"), MalformedToken),
    (
        "duplicate alg in the header",
        lambda: forge(
            ED,
            b64(
                f'{{"alg":"RS256","alg":"EdDSA","kid":"{ED.kid}","typ":"errdiscount+jwt"}}'.encode()
            ),
        ),
        MalformedToken,
    ),
    (
        "duplicate sub in the payload (signed)",
        lambda: forge(
            ED,
            None,
            json.dumps(claims())
            .replace('"sub": "user-42"', '"sub": "user-42", "sub": "admin"')
            .encode(),
        ),
        MalformedToken,
    ),
    (
        "NaN amount (signed)",
        lambda: forge(
            ED, None, json.dumps(claims()).replace('"amount": 2', '"amount": NaN').encode()
        ),
        MalformedToken,
    ),
    (
        "deeply nested payload (signed)",
        lambda: forge(ED, None, b'{"x":' * 200 + b"1" + b"}" * 200),
        MalformedToken,
    ),
    ("payload not UTF-8 (signed)", lambda: forge(ED, None, b'{"sub":"\xff"}'), MalformedToken),
    # --- size and shape of the input itself
    ("9 KiB token", lambda: forge(ED, None, claims(pad="x" * 9000)), TokenTooLarge),
    ("empty string", lambda: "", MalformedToken),
    ("not a string", lambda: 12345, MalformedToken),
    ("non-ASCII token", lambda: forge(ED) + "é", MalformedToken),
    # --- time
    (
        "expired",
        lambda: forge(ED, None, claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        TokenExpired,
    ),
    (
        "nbf in the future",
        lambda: forge(ED, None, claims(nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)),
        TokenNotYetValid,
    ),
    (
        "iat in the future",
        lambda: forge(ED, None, claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)),
        TokenNotYetValid,
    ),
    # --- who
    ("wrong issuer", lambda: forge(ED, None, claims(iss="https://evil.example")), WrongIssuer),
    (
        "issuer with our issuer as prefix",
        lambda: forge(ED, None, claims(iss=ISSUER + ".evil.example")),
        WrongIssuer,
    ),
    (
        "issuer as a list containing ours",
        lambda: forge(ED, None, claims(iss=[ISSUER])),
        InvalidClaims,
    ),
    ("wrong audience", lambda: forge(ED, None, claims(aud="https://other.example")), WrongAudience),
    ("audience list without us", lambda: forge(ED, None, claims(aud=["a", "b"])), WrongAudience),
    (
        "audience substring of ours",
        lambda: forge(ED, None, claims(aud=AUDIENCE[:-1])),
        WrongAudience,
    ),
]

MISSING = ["iss", "sub", "aud", "iat", "exp", "jti", "err", "comp"]

BAD_CLAIMS = [
    ("exp as a string", {"exp": "9999999999"}),
    ("iat as a float", {"iat": time.time()}),
    ("exp as a bool", {"exp": True}),
    ("exp before iat", {"iat": int(time.time()), "exp": int(time.time()) - 1}),
    ("negative amount", {"comp": {"kind": "coupon", "amount": -5, "unit": "USD"}}),
    ("zero amount", {"comp": {"kind": "coupon", "amount": 0, "unit": "USD"}}),
    ("amount as a string", {"comp": {"kind": "coupon", "amount": "5", "unit": "USD"}}),
    ("amount as a bool", {"comp": {"kind": "coupon", "amount": True, "unit": "USD"}}),
    ("absurd amount", {"comp": {"kind": "coupon", "amount": 10**12, "unit": "USD"}}),
    ("unknown kind", {"comp": {"kind": "cash", "amount": 5, "unit": "USD"}}),
    ("coupon in days", {"comp": {"kind": "coupon", "amount": 5, "unit": "days"}}),
    ("lower-case currency", {"comp": {"kind": "coupon", "amount": 5, "unit": "usd"}}),
    ("extra member in comp", {"comp": {"kind": "coupon", "amount": 5, "unit": "USD", "max": 9}}),
    ("unknown category", {"err": {"code": "PAY_001", "category": "cosmic", "severity": "minor"}}),
    ("unknown severity", {"err": {"code": "PAY_001", "category": "network", "severity": "huge"}}),
    (
        "error code with spaces",
        {"err": {"code": "PAY 001", "category": "network", "severity": "minor"}},
    ),
    ("err as a string", {"err": "PAY_001"}),
    ("unknown segment", {"seg": "vip"}),
    ("terms over http", {"terms": "http://example.com/terms"}),
    ("alert as javascript:", {"alert": "javascript:alert(1)"}),
    ("alert with credentials", {"alert": "https://user:pw@example.com/"}),
    ("aud as a number", {"aud": 7}),
    ("sub empty", {"sub": ""}),
    ("jti too short to be random", {"jti": "abc"}),
    ("jti with odd characters", {"jti": "a" * 20 + "/../"}),
    ("incident with spaces", {"incident": "INC 1"}),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_crafted_token_is_rejected(verifier, name, make, expected) -> None:
    token = make()
    with pytest.raises(expected) as info:
        verifier.verify(token, subject="user-42")
    # Exactly the expected class or a subclass of it, and never a leak of the token.
    assert isinstance(info.value, expected)
    if isinstance(token, str) and len(token) > 20:
        assert token not in str(info.value)


@pytest.mark.parametrize("claim", MISSING)
def test_missing_required_claim_is_rejected(verifier, claim) -> None:
    with pytest.raises(InvalidClaims, match=claim):
        verifier.verify(forge(ED, None, claims(**{claim: DROP})))


@pytest.mark.parametrize(("name", "overrides"), BAD_CLAIMS, ids=[b[0] for b in BAD_CLAIMS])
def test_wrongly_typed_claim_is_rejected(verifier, name, overrides) -> None:
    with pytest.raises(InvalidClaims):
        verifier.verify(forge(ED, None, claims(**overrides)))


def test_wrong_subject(verifier) -> None:
    with pytest.raises(WrongSubject):
        verifier.verify(forge(ED), subject="someone-else")


def test_the_control_token_verifies(verifier) -> None:
    """The same helpers build valid tokens, so the rejections above are not accidents."""
    for key in (ED, ES, RS):
        assert verifier.verify(forge(key, header(key)), subject="user-42").jti


def test_es256_twin_verifies_with_the_same_redemption_key(verifier) -> None:
    """s -> n - s is a second valid ECDSA signature of the same message.

    Decision (docs/token-spec.md): RFC 7518 has no low-S rule and standard JOSE
    libraries emit either form, so the default verifier accepts both; the twin
    carries the *same* jti, and redemption is keyed on (iss, jti), never on the
    token string (tests/server/test_token_interop_server.py redeems it once).
    """
    original = issuer_for("ES256").issue(
        subject="user-42",
        error_code="PAY_001",
        category="network",
        severity="minor",
        compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
    )
    twin = _es256_high_s(original)
    assert twin != original
    verified = verifier.verify(original)
    assert verifier.verify(twin).jti == verified.jti
    # A general JOSE library agrees: same claims, same redemption key.
    public = ES.private_key.public_key()
    decoded = jwt.decode(twin, public, algorithms=["ES256"], audience=AUDIENCE)
    assert decoded["jti"] == verified.jti


def _high_s_token() -> str:
    head = b64json(header(ES))
    body = b64json(claims())
    for _ in range(64):  # random nonces: a high-S signature shows up quickly
        sig = raw_sign(ES, f"{head}.{body}".encode(), low_s=False)
        if int.from_bytes(sig[32:], "big") > P256_N // 2:
            return f"{head}.{body}.{b64(sig)}"
    pytest.fail("no high-S signature produced")  # pragma: no cover - probability 2**-64


def test_high_s_signature_from_a_non_normalising_signer_verifies(verifier) -> None:
    assert verifier.verify(_high_s_token()).sub == "user-42"


def test_strict_mode_refuses_high_s_and_accepts_low_s() -> None:
    strict = TokenVerifier(KeySet([ES]), issuer=ISSUER, audience=AUDIENCE, require_low_s=True)
    with pytest.raises(InvalidSignature, match="low-S"):
        strict.verify(_high_s_token())
    assert strict.verify(forge(ES)).sub == "user-42"  # forge normalises to low-S
    low = issuer_for("ES256").issue(
        subject="u",
        error_code="PAY_001",
        category="network",
        severity="minor",
        compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
    )
    assert strict.verify(low).sub == "u"  # TokenIssuer always emits low-S


def test_issuer_always_emits_low_s() -> None:
    issuer = issuer_for("ES256")
    for _ in range(64):  # each signature is a fresh coin flip before normalisation
        token = issuer.issue(
            subject="u",
            error_code="PAY_001",
            category="network",
            severity="minor",
            compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
        )
        sig = base64.urlsafe_b64decode(token.split(".")[2] + "==")
        assert int.from_bytes(sig[32:], "big") <= P256_N // 2


@pytest.mark.parametrize("s_value", [0, P256_N, P256_N + 1, 2**256 - 1])
def test_es256_s_outside_the_group_is_refused(verifier, s_value) -> None:
    head, body, sig = forge(ES).split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    bad = raw[:32] + s_value.to_bytes(32, "big")
    with pytest.raises(InvalidSignature):
        verifier.verify(f"{head}.{body}.{b64(bad)}")


def test_pyjwt_minted_token_of_our_type_verifies(verifier) -> None:
    """Interoperability: format v1 is plain JWS, any JOSE library can mint it."""
    token = jwt.encode(
        claims(),
        ED.private_key,
        algorithm="EdDSA",
        headers={"kid": ED.kid, "typ": "errdiscount+jwt"},
    )
    assert verifier.verify(token).sub == "user-42"


def test_case_count_meets_the_issue() -> None:
    assert len(CASES) + len(MISSING) + len(BAD_CLAIMS) >= 30
