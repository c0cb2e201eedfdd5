"""Shared helpers for the token tests: a signer that signs anything, with any header."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from errdiscount_sdk import SigningKey, TokenIssuer, generate_signing_key

ISSUER = "https://api.example.com"
AUDIENCE = "https://redeem.example.com"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_KEYS: dict[str, SigningKey] = {}


def key_for(alg: str, slot: int = 0) -> SigningKey:
    """A cached key per (alg, slot): RSA generation is slow."""
    name = f"{alg}-{slot}"
    if name not in _KEYS:
        _KEYS[name] = generate_signing_key(alg)
    return _KEYS[name]


def issuer_for(alg: str = "EdDSA", slot: int = 0, **kwargs: Any) -> TokenIssuer:
    return TokenIssuer(key_for(alg, slot), issuer=ISSUER, audience=AUDIENCE, **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "jti": "Aq3xY0b2kL9mN8pQ7rS6tU",
        "err": {"code": "PAY_001", "category": "network", "severity": "minor"},
        "comp": {"kind": "coupon", "amount": 2, "unit": "USD"},
    }
    for name, value in overrides.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


_DROP = object()
DROP = _DROP


def header(key: SigningKey, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": key.algorithm, "kid": key.kid, "typ": "errdiscount+jwt"}
    for name, value in overrides.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def raw_sign(key: SigningKey, data: bytes, *, low_s: bool = True) -> bytes:
    """Sign like a JOSE library; ES256 is raw r||s, low-S normalised unless told not to."""
    private = key.private_key
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(data)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        if low_s and s > P256_N // 2:
            s = P256_N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def forge(
    key: SigningKey,
    head: dict[str, Any] | str | None = None,
    payload: dict[str, Any] | bytes | str | None = None,
) -> str:
    """A compact token signed by ``key`` over whatever header and payload are given."""
    h = head if isinstance(head, str) else b64json(head if head is not None else header(key))
    if isinstance(payload, bytes):
        p = b64(payload)
    elif isinstance(payload, str):
        p = payload
    else:
        p = b64json(payload if payload is not None else claims())
    signature = raw_sign(key, f"{h}.{p}".encode())
    return f"{h}.{p}.{b64(signature)}"
