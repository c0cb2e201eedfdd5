"""``errdiscount redeem TOKEN --server URL``: exit codes 0 / 1 / 2."""

from __future__ import annotations

import json

import pytest

from errdiscount_sdk._cli import main
from tests._server_support import running, token


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
