import json
import stat

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from errdiscount_sdk._cli.main import main
from tests.support.server import serve

# --- token commands: keygen, jwks, issue, verify -------------------------------------


ISS, AUD = "https://api.example.com", "https://redeem.example.com"


def _issue_args(key: str, **extra: str) -> list[str]:
    args = {
        "--key": key,
        "--issuer": ISS,
        "--audience": AUD,
        "--subject": "u1",
        "--error-code": "PAY_001",
        "--category": "network",
        "--severity": "minor",
        "--kind": "coupon",
        "--amount": "2",
        "--unit": "USD",
    }
    args.update(extra)
    return ["issue", *[x for pair in args.items() for x in pair]]


@pytest.fixture
def keyfile(tmp_path, capsys):
    path = tmp_path / "key.pem"
    assert main(["keygen", "--alg", "ES256", "--out", str(path)]) == 0
    jwks = json.loads(capsys.readouterr().out)
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    return path, tmp_path / "jwks.json", jwks


def test_keygen_writes_private_pem_and_prints_public_jwks(keyfile) -> None:
    path, _, jwks = keyfile
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in path.read_bytes()
    (jwk,) = jwks["keys"]
    assert jwk["alg"] == "ES256"
    assert "d" not in jwk


def test_keygen_refuses_to_overwrite(keyfile, capsys) -> None:
    path, _, _ = keyfile
    assert main(["keygen", "--out", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["keygen", "--out", str(path), "--force"]) == 0


def test_jwks_of_a_key_file(keyfile, capsys) -> None:
    path, _, jwks = keyfile
    assert main(["jwks", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == jwks


def test_issue_then_verify(keyfile, capsys) -> None:
    path, jwks_path, _ = keyfile
    assert main(_issue_args(str(path), **{"--segment": "new", "--ttl": "600"})) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2
    code = main(
        [
            "verify",
            token,
            "--jwks",
            str(jwks_path),
            "--issuer",
            ISS,
            "--audience",
            AUD,
            "--subject",
            "u1",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["valid"] is True
    assert out["header"]["alg"] == "ES256"
    assert out["claims"]["comp"] == {"kind": "coupon", "amount": 2, "unit": "USD"}
    assert out["claims"]["seg"] == "new"
    assert out["claims"]["exp"] - out["claims"]["iat"] == 600


def test_verify_failure_prints_the_typed_error_and_exits_1(keyfile, capsys) -> None:
    path, jwks_path, _ = keyfile
    main(_issue_args(str(path)))
    token = capsys.readouterr().out.strip()
    code = main(["verify", token, "--jwks", str(jwks_path), "--issuer", ISS, "--audience", "other"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out == {
        "valid": False,
        "reason": "wrong_audience",
        "error": "WrongAudience",
        "message": out["message"],
    }
    assert (
        main(["verify", "garbage", "--jwks", str(jwks_path), "--issuer", ISS, "--audience", AUD])
        == 1
    )
    assert json.loads(capsys.readouterr().out)["reason"] == "malformed"


def test_issue_from_a_claims_file(keyfile, tmp_path, capsys) -> None:
    path, jwks_path, _ = keyfile
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "issuer": ISS,
                "audience": AUD,
                "subject": "u9",
                "error_code": "SRV_500",
                "category": "protocol",
                "severity": "severe",
                "compensation": {"kind": "service_credit", "amount": 3, "unit": "days"},
                "incident": "INC-3",
            }
        )
    )
    assert main(["issue", "--key", str(path), "--claims", str(claims)]) == 0
    token = capsys.readouterr().out.strip()
    assert (
        main(["verify", token, "--jwks", str(jwks_path), "--issuer", ISS, "--audience", AUD]) == 0
    )
    assert json.loads(capsys.readouterr().out)["claims"]["incident"] == "INC-3"


def test_verify_against_a_jwks_url(keyfile, capsys) -> None:
    path, _, jwks = keyfile
    main(_issue_args(str(path)))
    token = capsys.readouterr().out.strip()
    app = Starlette(routes=[Route("/jwks.json", lambda request: JSONResponse(jwks))])
    with serve(app) as url:
        args = [
            "verify",
            token,
            "--jwks-url",
            f"{url}/jwks.json",
            "--issuer",
            ISS,
            "--audience",
            AUD,
        ]
        assert main(args) == 2  # http needs the explicit loopback flag
        assert "https" in capsys.readouterr().err
        assert main([*args, "--allow-http-loopback"]) == 0


def test_encrypted_key_with_password_from_environment(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "enc.pem"
    monkeypatch.setenv("KEY_PW", "correct horse")
    assert main(["keygen", "--out", str(path), "--password-env", "KEY_PW"]) == 0
    capsys.readouterr()
    assert b"ENCRYPTED" in path.read_bytes()
    assert main(["jwks", str(path), "--password-env", "KEY_PW"]) == 0
    assert main(["jwks", str(path)]) == 1
    assert "password" in capsys.readouterr().err
    assert main(["jwks", str(path), "--password-env", "NOT_SET_ANYWHERE"]) == 2


@pytest.mark.parametrize(
    "extra",
    [{"--amount": "-3"}, {"--unit": "days"}, {"--terms": "http://x.example"}],
)
def test_issue_bad_values_are_usage_errors(keyfile, capsys, extra) -> None:
    path, _, _ = keyfile
    assert main(_issue_args(str(path), **extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("errdiscount: error:")


def test_issue_missing_field_and_unknown_claims_field(keyfile, tmp_path, capsys) -> None:
    path, _, _ = keyfile
    assert main(["issue", "--key", str(path), "--issuer", ISS]) == 2
    assert "missing audience" in capsys.readouterr().err
    claims = tmp_path / "c.json"
    claims.write_text(json.dumps({"jti": "chosen-by-caller"}))
    assert main(["issue", "--key", str(path), "--claims", str(claims)]) == 2
    assert "unknown field 'jti'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["keygen"],
        ["keygen", "--out", "x", "--alg", "HS256"],
        ["verify", "t", "--issuer", ISS],
        ["issue", "--key", "k", "--amount", "lots"],
        ["nosuch"],
    ],
)
def test_usage_errors_exit_2(argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize("command", ["keygen", "jwks", "issue", "verify"])
def test_help_everywhere(command, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: errdiscount " + command in capsys.readouterr().out


# --- bad arguments: exit 2, one line, no traceback -----------------------------------


def _one_line_usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("errdiscount: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "-1"),
        ("--timeout", "0"),
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "soon"),
        ("--attempts", "0"),
        ("--attempts", "21"),
    ],
)
def test_redeem_refuses_bad_numbers_in_one_line(capsys, flag, value) -> None:
    line = _one_line_usage_error(
        capsys, ["redeem", "T", "--server", "http://127.0.0.1:1", flag, value]
    )
    assert flag in line


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--amqp-url", "http://127.0.0.1:5672/"], "must start with amqp:// or amqps://"),
        (["--amqp-url", "amqp://guest:s3cret-pw@127.0.0.1:99999/"], "a port from 1 to 65535"),
        (["--amqp-url", "amqp://guest:s3cret-pw@127.0.0.1:x/"], "a port from 1 to 65535"),
        (["--amqp-url", "amqp:///"], "needs a host"),
        (["--amqp-url", "amqp://h/" + "v" * 3000], "longer than 2048 characters"),
        (["--amqp-url", "amqp://h/", "--amqp-exchange", "two words"], "printable ASCII"),
        (["--amqp-url", "amqp://h/", "--amqp-exchange", "x" * 256], "1 to 255"),
        (["--amqp-exchange", "errdiscount"], "--amqp-exchange needs --amqp-url"),
    ],
)
def test_demo_refuses_bad_broker_flags_in_one_line(capsys, argv, says) -> None:
    line = _one_line_usage_error(capsys, ["demo", *argv])
    assert says in line
    assert "s3cret-pw" not in line  # a broker URL's password is never repeated


def test_unknown_flags_are_one_line_too(capsys) -> None:
    assert "--nope" in _one_line_usage_error(capsys, ["redeem", "T", "--server", "x", "--nope"])


def test_a_missing_claims_file_is_reported_as_not_found(keyfile, tmp_path, capsys) -> None:
    missing = tmp_path / "claims.json"
    capsys.readouterr()
    assert main(_issue_args(str(keyfile[0]), **{"--claims": str(missing)})) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"errdiscount: error: {str(missing)!r} not found"]


def test_a_closed_stdout_ends_quietly(keyfile) -> None:
    import os
    import subprocess
    import sys

    from tests.support.server_support import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "errdiscount_sdk", "jwks", str(keyfile[0])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert process.stdout is not None
    process.stdout.close()  # as `| head` does: nobody reads what we write
    _, err = process.communicate(timeout=60)
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err
    assert process.returncode == 1
