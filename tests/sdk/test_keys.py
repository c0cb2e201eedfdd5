from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from errdiscount_sdk import (
    KeyLoadError,
    KeyRing,
    KeySet,
    SigningKey,
    generate_signing_key,
    jwk_thumbprint,
    load_signing_key_pem,
    save_signing_key_pem,
)
from errdiscount_sdk._tokens.keys import b64url_decode, b64url_encode, signing_key_to_pem
from tests.support.token_helpers import key_for

# RFC 7638 §3.1 example key and its published thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
    "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
    "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
    "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_rfc7638_thumbprint_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    key = KeySet.from_jwks({"keys": [RFC7638_JWK]}).get("2011-04-29")
    assert key is not None
    assert jwk_thumbprint(key.public_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_generate_default_kid_is_thumbprint(alg: str) -> None:
    key = key_for(alg)
    assert key.algorithm == alg
    assert key.kid == jwk_thumbprint(key.private_key.public_key())
    jwk = key.public_jwk()
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert jwk["kid"] == key.kid
    assert not {"d", "p", "q"} & set(jwk)


def test_unknown_algorithm() -> None:
    with pytest.raises(KeyLoadError):
        generate_signing_key("HS256")


@pytest.mark.parametrize("password", [None, "s3cret", b"bytes-pw"])
def test_pem_round_trip(tmp_path, password) -> None:
    key = key_for("ES256")
    path = tmp_path / "key.pem"
    save_signing_key_pem(key, path, password=password)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_bytes()
    assert text.startswith(b"-----BEGIN " + (b"ENCRYPTED " if password else b"") + b"PRIVATE KEY")
    loaded = load_signing_key_pem(path, password)
    assert (loaded.kid, loaded.algorithm) == (key.kid, key.algorithm)
    assert load_signing_key_pem(text, password).kid == key.kid
    assert load_signing_key_pem(text.decode(), password).kid == key.kid


def test_wrong_or_missing_password(tmp_path) -> None:
    pem = signing_key_to_pem(key_for("EdDSA"), "right")
    for password in ("wrong", None):
        with pytest.raises(KeyLoadError, match="password"):
            load_signing_key_pem(pem, password)


def test_save_refuses_to_overwrite(tmp_path) -> None:
    path = tmp_path / "key.pem"
    save_signing_key_pem(key_for("EdDSA"), path)
    with pytest.raises(KeyLoadError, match="exists"):
        save_signing_key_pem(key_for("EdDSA", 1), path)
    save_signing_key_pem(key_for("EdDSA", 1), path, overwrite=True)
    assert load_signing_key_pem(path).kid == key_for("EdDSA", 1).kid


@pytest.mark.parametrize(
    "source",
    [
        b"not a pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "/nonexistent/k.pem",
    ],
)
def test_bad_pem_sources(source) -> None:
    with pytest.raises(KeyLoadError):
        load_signing_key_pem(source)


def test_weak_or_foreign_private_keys_refused() -> None:
    from cryptography.hazmat.primitives import serialization

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    for private in (small, p384):
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(KeyLoadError):
            load_signing_key_pem(pem)


def test_keyset_jwks_round_trip_pins_algorithms() -> None:
    keys = KeySet([key_for("EdDSA"), key_for("ES256"), key_for("RS256")])
    text = json.dumps(keys.to_jwks())
    again = KeySet.from_jwks(text)
    assert again.kids == keys.kids
    assert [k.algorithm for k in again] == ["EdDSA", "ES256", "RS256"]
    assert key_for("EdDSA").kid in again
    assert len(again) == 3


def test_kid_defaults_to_thumbprint_and_enc_keys_are_skipped() -> None:
    jwk = key_for("EdDSA").public_jwk()
    del jwk["kid"]
    enc = {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}
    keys = KeySet.from_jwks({"keys": [jwk, enc]})
    assert keys.kids == (key_for("EdDSA").kid,)


def _jwk(key_alg: str, /, **changes: object) -> dict[str, object]:
    jwk: dict[str, object] = dict(key_for(key_alg).public_jwk())
    jwk.update(changes)
    return {k: v for k, v in jwk.items() if v is not None}


BAD_JWKS = [
    ("symmetric oct key", {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}),
    ("unknown kty", {"kty": "XYZ", "kid": "x"}),
    ("Ed448 curve", _jwk("EdDSA", crv="Ed448")),
    ("P-384 curve", _jwk("ES256", crv="P-384")),
    ("alg that does not fit the key", _jwk("EdDSA", alg="RS256")),
    ("HS256 alg on an RSA key", _jwk("RS256", alg="HS256")),
    ("private member d", _jwk("EdDSA", d="AAAA")),
    ("use enc is fine but use other is not", _jwk("EdDSA", use="wrap")),
    ("key_ops without verify", _jwk("EdDSA", key_ops=["sign"])),
    ("padded base64", _jwk("EdDSA", x=str(_jwk("EdDSA")["x"]) + "=")),
    ("point not on the curve", _jwk("ES256", y=b64url_encode(b"\x01" * 32))),
    ("short EC coordinate", _jwk("ES256", x=b64url_encode(b"\x01" * 31))),
    ("even RSA exponent", _jwk("RS256", e=b64url_encode(b"\x02"))),
    ("kid too long", _jwk("EdDSA", kid="k" * 200)),
    ("kid a number", _jwk("EdDSA", kid=5)),
    ("not an object", "just a string"),
]


@pytest.mark.parametrize(("name", "jwk"), BAD_JWKS, ids=[b[0] for b in BAD_JWKS])
def test_bad_jwk_rejects_the_set(name, jwk) -> None:
    with pytest.raises(KeyLoadError):
        KeySet.from_jwks({"keys": [jwk]})


def test_rsa_under_2048_bits_rejected() -> None:
    small = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    )
    jwk = {"kty": "RSA", "n": b64url_encode(small.n.to_bytes(128, "big")), "e": "AQAB", "kid": "s"}
    with pytest.raises(KeyLoadError, match="2048"):
        KeySet.from_jwks({"keys": [jwk]})


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        '{"keys": [], "keys": []}',
        '{"nokeys": []}',
        json.dumps({"keys": [key_for("EdDSA").public_jwk()] * 2}),
        json.dumps({"keys": [{"kty": "XYZ"}] * 65}),
        " " * (64 * 1024 + 1),
    ],
)
def test_bad_jwks_documents(document: str) -> None:
    with pytest.raises(KeyLoadError):
        KeySet.from_jwks(document)


def test_b64url_decode_is_canonical() -> None:
    assert b64url_decode("QQ") == b"A"
    for bad in ("QQ==", "QR", "Q Q", "Q+", "é", "Q"):
        assert b64url_decode(bad) is None


def test_key_reprs_hide_key_material() -> None:
    key = key_for("EdDSA")
    assert "private" not in repr(key).lower().replace("private_key", "")
    assert "Ed25519PrivateKey" not in repr(key)
    assert isinstance(key, SigningKey)


def test_key_ring_rotation_schedule() -> None:
    now = [100.0]
    first = key_for("EdDSA")
    ring = KeyRing(first, max_token_ttl=dt.timedelta(seconds=50), clock=lambda: now[0])
    second = ring.rotate(key_for("EdDSA", 1))
    assert ring.active is second
    assert [k.kid for k in ring.published()] == [second.kid, first.kid]
    now[0] = 149.0
    assert first.kid in ring.key_set()
    now[0] = 150.0
    assert [k["kid"] for k in ring.jwks()["keys"]] == [second.kid]
    with pytest.raises(KeyLoadError):
        ring.rotate(second)
    third = ring.rotate()  # a fresh key of the same algorithm
    assert third.algorithm == "EdDSA"
    assert third.kid not in (first.kid, second.kid)
    with pytest.raises(KeyLoadError):
        KeyRing(first, max_token_ttl=dt.timedelta(0))
