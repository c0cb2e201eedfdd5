"""Key rotation end to end: the server keeps publishing the keys it still trusts.

The runbook of docs/server.md, step by step, with the real CLI, a real server on
loopback and the SDK's offline verifier fetching /.well-known/jwks.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from errdiscount_sdk import TokenVerifier, UnknownKey, load_signing_key_pem
from errdiscount_sdk._cli.main import main
from server_stub import Settings, create_app
from tests.support.server import serve
from tests.support.server_support import ADMIN_KEY, AUDIENCE, ISSUER, admin, settings

ISSUE = {"subject": "alice", "error_code": "PAY_001", "category": "business", "severity": "minor"}


def _server(tmp_path: Path, **overrides: object) -> Settings:
    return settings(tmp_path, **overrides)


def _offline_verifier(url: str) -> TokenVerifier:
    """What an app following the README does: verify against the published JWKS."""
    return TokenVerifier.from_jwks_url(
        f"{url}/.well-known/jwks.json", issuer=ISSUER, audience=AUDIENCE, allow_http_loopback=True
    )


def _kids(url: str) -> list[str]:
    return [k["kid"] for k in httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]]


def _mint(url: str) -> str:
    response = httpx.post(f"{url}/v1/tokens", json=ISSUE, headers=admin())
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_rotation_runbook_keeps_old_tokens_verifiable_offline(tmp_path, capsys) -> None:
    old_pem, new_pem = tmp_path / "old.pem", tmp_path / "new.pem"
    # 1. The server runs with the old key (created on first start) and issues tokens.
    with serve(create_app(_server(tmp_path, signing_key=str(old_pem)))) as url:
        old_token = _mint(url)
    old_kid = load_signing_key_pem(old_pem).kid
    # 2. Export the old public key; make the new key (here with a readable kid).
    assert main(["jwks", str(old_pem)]) == 0
    (tmp_path / "old.jwks").write_text(capsys.readouterr().out)
    assert main(["keygen", "--kid", "2026-q2", "--out", str(new_pem)]) == 0
    capsys.readouterr()
    # 3. Restart: sign with the new key, keep trusting (and publishing) the old one.
    rotated = _server(
        tmp_path, signing_key=str(new_pem), trusted_jwks=(str(tmp_path / "old.jwks"),)
    )
    with serve(create_app(rotated)) as url:
        assert _kids(url) == ["2026-q2", old_kid]  # the signing key first
        new_token = _mint(url)
        verifier = _offline_verifier(url)
        assert verifier.verify(old_token).kid == old_kid
        assert verifier.verify(new_token).kid == "2026-q2"
        redeemed = httpx.post(f"{url}/v1/redemptions", json={"token": old_token})
        assert redeemed.status_code == 201
    # 4. Once the old key's last token has expired, drop it: it is neither trusted nor listed.
    with serve(create_app(_server(tmp_path, signing_key=str(new_pem)))) as url:
        assert _kids(url) == ["2026-q2"]
        with pytest.raises(UnknownKey):
            _offline_verifier(url).verify(old_token)
        refused = httpx.post(f"{url}/v1/redemptions", json={"token": old_token})
        assert refused.status_code == 401


def test_another_issuers_keys_are_trusted_but_never_published(tmp_path, capsys) -> None:
    assert main(["keygen", "--kid", "partner-1", "--out", str(tmp_path / "p.pem")]) == 0
    (tmp_path / "p.jwks").write_text(capsys.readouterr().out)
    spec = f"https://partner.example|{tmp_path / 'p.jwks'}"
    with serve(create_app(_server(tmp_path, trusted_jwks=(spec,)))) as url:
        assert "partner-1" not in _kids(url)
        assert len(_kids(url)) == 1


def test_peer_keys_from_a_trusted_url_are_published_once_cached(tmp_path) -> None:
    """Replica B trusts replica A's JWKS URL; B lists A's key once it has fetched it."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    with serve(create_app(_server(a_dir, signing_key=str(a_dir / "a.pem")))) as a_url:
        a_token = _mint(a_url)
        a_kid = load_signing_key_pem(a_dir / "a.pem").kid
        b_settings = _server(
            b_dir,
            signing_key=str(b_dir / "b.pem"),
            trusted_jwks=(f"{a_url}/.well-known/jwks.json",),
        )
        with serve(create_app(b_settings)) as b_url:
            assert a_kid not in _kids(b_url)  # publishing never fetches
            response = httpx.post(f"{b_url}/v1/redemptions", json={"token": a_token})
            assert response.status_code == 201  # B fetched A's keys to verify it
            assert _kids(b_url)[1:] == [a_kid]
            assert _offline_verifier(b_url).verify(a_token).kid == a_kid


def test_published_jwks_is_what_a_verifier_accepts(tmp_path, capsys) -> None:
    """Every published key is a valid v1 JWK (the SDK parses the document)."""
    assert main(["keygen", "--alg", "ES256", "--out", str(tmp_path / "r.pem")]) == 0
    (tmp_path / "r.jwks").write_text(capsys.readouterr().out)
    with serve(create_app(_server(tmp_path, trusted_jwks=(str(tmp_path / "r.jwks"),)))) as url:
        document = httpx.get(f"{url}/.well-known/jwks.json")
        assert document.headers["content-type"] == "application/jwk-set+json"
        body = json.loads(document.content)
        assert [k["alg"] for k in body["keys"]] == ["EdDSA", "ES256"]
        assert all("d" not in k for k in body["keys"])
    assert ADMIN_KEY not in document.text
