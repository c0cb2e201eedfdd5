"""``errdiscount redeem TOKEN --server URL``: exit codes 0 / 1 / 2."""

from __future__ import annotations

import json

import pytest

from errdiscount_sdk._cli.main import main
from errdiscount_sdk.testing import disable_backoff
from tests.support.redeem_faults import flaky_app
from tests.support.server import serve
from tests.support.server_support import running, token


def test_redeem_then_refused(tmp_path, capsys) -> None:
    minted = token("cli-user")
    with running(tmp_path) as url:
        assert main(["redeem", minted, "--server", url, "--idempotency-key", "k1"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["subject"] == "cli-user"
        assert main(["redeem", minted, "--server", url]) == 1
        error = json.loads(capsys.readouterr().err)
        assert error["error_code"] == "TOKEN_ALREADY_REDEEMED"
        assert error["error"] == "AlreadyRedeemed"


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as missing:
        main(["redeem", "tok"])
    assert missing.value.code == 2
    assert main(["redeem", "tok", "--server", "ftp://nowhere"]) == 2


def test_transient_failures_are_retried_by_the_engine(capsys) -> None:
    app, keys = flaky_app([503, 503])
    with serve(app) as url, disable_backoff():
        assert main(["redeem", "tok", "--server", url, "--attempts", "2"]) == 1
        error = json.loads(capsys.readouterr().err)
        assert error == {
            "error": "ServiceUnavailable",
            "error_code": "STORE_BUSY",
            "status": 503,
            "message": "busy",
            "attempts": 2,
        }
        assert len(keys) == 2
        assert main(["redeem", "tok", "--server", url]) == 0  # 3rd request: the redemption
        assert json.loads(capsys.readouterr().out)["id"] == "rdm_1"
    with pytest.raises(SystemExit) as refused:  # a usage error, caught by argparse
        main(["redeem", "tok", "--server", url, "--attempts", "0"])
    assert refused.value.code == 2
