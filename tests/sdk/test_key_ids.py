"""Key ids survive the key file: `errdiscount keygen --kid X` then `issue --key` signs as X."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from errdiscount_sdk import (
    KeyLoadError,
    TokenVerifier,
    generate_signing_key,
    load_signing_key_pem,
    save_signing_key_pem,
)
from errdiscount_sdk._cli.main import main
from errdiscount_sdk._tokens.keys import signing_key_to_pem
from errdiscount_sdk.wire import MAX_KID_CHARS

ISS, AUD = "https://api.example.com", "https://redeem.example.com"


def _issue(key: str) -> list[str]:
    return [
        "issue", "--key", key, "--issuer", ISS, "--audience", AUD, "--subject", "u1",
        "--error-code", "PAY_001", "--category", "network", "--severity", "minor",
        "--kind", "coupon", "--amount", "2", "--unit", "USD",
    ]  # fmt: skip


def _header(token: str) -> dict[str, str]:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
@pytest.mark.parametrize("password", [None, "pw-from-env"])
def test_keygen_kid_is_the_kid_issue_signs_with(tmp_path, capsys, monkeypatch, alg, password):
    path = str(tmp_path / "k.pem")
    secret = []
    if password:
        monkeypatch.setenv("KEY_PW", password)
        secret = ["--password-env", "KEY_PW"]
    assert main(["keygen", "--alg", alg, "--kid", "2026-04", "--out", path, *secret]) == 0
    jwks = json.loads(capsys.readouterr().out)
    assert [k["kid"] for k in jwks["keys"]] == ["2026-04"]
    assert main([*_issue(path), *secret]) == 0
    token = capsys.readouterr().out.strip()
    assert _header(token)["kid"] == "2026-04"
    # The published JWKS verifies it, and `jwks` of the file names the same kid.
    assert TokenVerifier(jwks, issuer=ISS, audience=AUD).verify(token).kid == "2026-04"
    assert main(["jwks", path, *secret]) == 0
    assert json.loads(capsys.readouterr().out) == jwks


def test_the_kid_line_does_not_disturb_other_pem_readers(tmp_path) -> None:
    key = generate_signing_key("EdDSA", kid="ops/2026-04")
    path = tmp_path / "k.pem"
    save_signing_key_pem(key, path)
    text = path.read_bytes()
    assert text.startswith(b"kid: ops/2026-04\n-----BEGIN PRIVATE KEY-----\n")
    openssl = shutil.which("openssl")
    if openssl:  # the reference PEM reader skips the explanatory line
        done = subprocess.run(
            [openssl, "pkey", "-in", str(path), "-noout"], capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr
    assert load_signing_key_pem(path).kid == "ops/2026-04"
    assert load_signing_key_pem(text).kid == "ops/2026-04"  # bytes and text too
    assert load_signing_key_pem(text.decode()).kid == "ops/2026-04"
    assert load_signing_key_pem(path, kid="override").kid == "override"  # the argument wins


def test_a_thumbprint_kid_needs_no_line() -> None:
    key = generate_signing_key("ES256")
    pem = signing_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_signing_key_pem(pem).kid == key.kid


@pytest.mark.parametrize(
    "kid", ["", "x" * (MAX_KID_CHARS + 1), "two\nlines", " padded", "tab\there", "\x00"]
)
def test_kids_outside_the_spec_are_refused(tmp_path, capsys, kid) -> None:
    with pytest.raises(KeyLoadError, match="kid"):
        generate_signing_key("EdDSA", kid=kid)
    with pytest.raises(SystemExit) as exit_info:
        main(["keygen", "--kid", kid, "--out", str(tmp_path / "k.pem")])
    assert exit_info.value.code == 2
    assert "kid" in capsys.readouterr().err
    assert not (tmp_path / "k.pem").exists()


def test_a_kid_of_the_maximum_length_is_fine() -> None:
    kid = "k" * MAX_KID_CHARS
    assert load_signing_key_pem(signing_key_to_pem(generate_signing_key(kid=kid))).kid == kid


@pytest.mark.parametrize(
    "prefix",
    [b"kid: a\nkid: b\n", b"kid: " + b"x" * (MAX_KID_CHARS + 1) + b"\n", b"kid: \xff\n"],
)
def test_bad_kid_lines_are_key_load_errors(prefix: bytes) -> None:
    pem = signing_key_to_pem(generate_signing_key())
    with pytest.raises(KeyLoadError, match="kid"):
        load_signing_key_pem(prefix + pem)
