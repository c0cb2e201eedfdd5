"""Interop matrix: format v1 is plain JWS, so other JOSE libraries mint and verify it.

For EdDSA, ES256 and RS256: tokens minted by PyJWT, jwcrypto, joserfc and Node's
``jose`` (npm) verify with `TokenVerifier`, and tokens minted by `TokenIssuer`
verify with each of them. None of those libraries normalises ECDSA to low-S, so
about half their ES256 tokens are high-S: each ES256 cell mints several.

Node's ``jose`` is installed into a temporary directory with npm (once per
session); without ``node``/``npm`` or the registry those cells are skipped with
the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwk as rfc_jwk
from joserfc import jwt as rfc_jwt
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from errdiscount_sdk import SigningKey, TokenIssuer, TokenVerifier
from errdiscount_sdk._tokens.keys import signing_key_to_pem
from tests.support.token_helpers import AUDIENCE, ISSUER, key_for

ALGS = ["EdDSA", "ES256", "RS256"]
TYP = "errdiscount+jwt"
PER_CELL = {"EdDSA": 2, "ES256": 12, "RS256": 2}  # ES256: P(no high-S in 12) = 1/4096

Minter = Callable[[SigningKey, dict[str, Any]], str]
Checker = Callable[[SigningKey, str], dict[str, Any]]


def _claims(i: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": f"user-{i}",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": f"interop-token-{i:06d}",
        "err": {"code": "PAY_001", "category": "network", "severity": "minor"},
        "comp": {"kind": "coupon", "amount": 2, "unit": "USD"},
    }


def _header(key: SigningKey) -> dict[str, str]:
    return {"alg": key.algorithm, "kid": key.kid, "typ": TYP}


def _private_jwk(key: SigningKey) -> dict[str, Any]:
    exported = jc_jwk.JWK.from_pem(signing_key_to_pem(key)).export_private(as_dict=True)
    return {**exported, "kid": key.kid}


# --- PyJWT --------------------------------------------------------------------------------


def pyjwt_mint(key: SigningKey, claims: dict[str, Any]) -> str:
    header = {"kid": key.kid, "typ": TYP}
    return pyjwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=header)


def pyjwt_check(key: SigningKey, token: str) -> dict[str, Any]:
    assert pyjwt.get_unverified_header(token)["typ"] == TYP
    public = key.private_key.public_key()
    decoded: dict[str, Any] = pyjwt.decode(
        token, public, algorithms=[key.algorithm], audience=AUDIENCE, issuer=ISSUER
    )
    return decoded


# --- jwcrypto -----------------------------------------------------------------------------


def jwcrypto_mint(key: SigningKey, claims: dict[str, Any]) -> str:
    signer = jc_jwk.JWK(**_private_jwk(key))
    token = jc_jwt.JWT(header=_header(key), claims=claims)
    token.make_signed_token(signer)
    return str(token.serialize())


def jwcrypto_check(key: SigningKey, token: str) -> dict[str, Any]:
    public = jc_jwk.JWK(**key.public_jwk())
    checked = jc_jwt.JWT(
        jwt=token,
        key=public,
        algs=[key.algorithm],
        expected_type="JWS",
        check_claims={"iss": ISSUER, "aud": AUDIENCE, "exp": None},
    )
    decoded: dict[str, Any] = json.loads(checked.claims)
    return decoded


# --- joserfc ------------------------------------------------------------------------------


def _joserfc_key(jwk: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc marks EdDSA "deprecated" (RFC 9864 names)
        return rfc_jwk.import_key(jwk)


def joserfc_mint(key: SigningKey, claims: dict[str, Any]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rfc_jwt.encode(
            _header(key), claims, _joserfc_key(_private_jwk(key)), algorithms=[key.algorithm]
        )


def joserfc_check(key: SigningKey, token: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = rfc_jwt.decode(token, _joserfc_key(key.public_jwk()), algorithms=[key.algorithm])
    assert decoded.header["typ"] == TYP
    registry = rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
    )
    registry.validate(decoded.claims)
    return dict(decoded.claims)


# --- Node jose ----------------------------------------------------------------------------

_NODE_SCRIPT = r"""
import * as jose from "jose";
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = [];
if (job.mode === "sign") {
  const key = await jose.importJWK(job.jwk, job.alg);
  for (const claims of job.claims) {
    out.push(await new jose.SignJWT(claims).setProtectedHeader(job.header).sign(key));
  }
} else {
  const key = await jose.importJWK(job.jwk, job.alg);
  for (const token of job.tokens) {
    const { payload, protectedHeader } = await jose.jwtVerify(token, key, {
      algorithms: [job.alg], issuer: job.issuer, audience: job.audience, typ: job.typ,
    });
    out.push(payload);
  }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="session")
def node_jose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are not installed: Node's jose cells are skipped")
    root = tmp_path_factory.mktemp("node-jose")
    (root / "package.json").write_text('{"private": true, "type": "module"}')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "jose@5"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install jose (registry unreachable?): {done.stderr[-200:]}")
    (root / "interop.mjs").write_text(_NODE_SCRIPT)
    return root


def _node(root: Path, job: dict[str, Any]) -> list[Any]:
    done = subprocess.run(
        ["node", "interop.mjs"],
        cwd=root,
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


# --- the matrix ---------------------------------------------------------------------------

MINTERS: dict[str, Minter] = {
    "pyjwt": pyjwt_mint,
    "jwcrypto": jwcrypto_mint,
    "joserfc": joserfc_mint,
}
CHECKERS: dict[str, Checker] = {
    "pyjwt": pyjwt_check,
    "jwcrypto": jwcrypto_check,
    "joserfc": joserfc_check,
}


def _verifier(key: SigningKey) -> TokenVerifier:
    return TokenVerifier({"keys": [key.public_jwk()]}, issuer=ISSUER, audience=AUDIENCE)


def _ours(key: SigningKey, i: int) -> str:
    return TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE).issue(
        subject=f"user-{i}",
        error_code="PAY_001",
        category="network",
        severity="minor",
        compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
    )


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("library", sorted(MINTERS))
def test_tokens_minted_by_other_libraries_verify_with_ours(library: str, alg: str) -> None:
    key = key_for(alg)
    verifier = _verifier(key)
    for i in range(PER_CELL[alg]):
        token = MINTERS[library](key, _claims(i))
        verified = verifier.verify(token, subject=f"user-{i}")
        assert (verified.jti, verified.kid, verified.alg) == (
            f"interop-token-{i:06d}",
            key.kid,
            alg,
        )


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("library", sorted(CHECKERS))
def test_our_tokens_verify_with_other_libraries(library: str, alg: str) -> None:
    key = key_for(alg)
    for i in range(PER_CELL[alg]):
        claims = CHECKERS[library](key, _ours(key, i))
        assert claims["sub"] == f"user-{i}"
        assert claims["comp"] == {"kind": "coupon", "amount": 2, "unit": "USD"}


@pytest.mark.parametrize("alg", ALGS)
def test_node_jose_tokens_verify_with_ours(node_jose: Path, alg: str) -> None:
    key = key_for(alg)
    job = {
        "mode": "sign",
        "alg": alg,
        "jwk": _private_jwk(key),
        "header": _header(key),
        "claims": [_claims(i) for i in range(PER_CELL[alg])],
    }
    verifier = _verifier(key)
    tokens = _node(node_jose, job)
    assert len(tokens) == PER_CELL[alg]
    for i, token in enumerate(tokens):
        assert verifier.verify(token).jti == f"interop-token-{i:06d}"


@pytest.mark.parametrize("alg", ALGS)
def test_our_tokens_verify_with_node_jose(node_jose: Path, alg: str) -> None:
    key = key_for(alg)
    job = {
        "mode": "verify",
        "alg": alg,
        "jwk": key.public_jwk(),
        "tokens": [_ours(key, i) for i in range(PER_CELL[alg])],
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "typ": TYP,
    }
    payloads = _node(node_jose, job)
    assert [p["sub"] for p in payloads] == [f"user-{i}" for i in range(PER_CELL[alg])]
