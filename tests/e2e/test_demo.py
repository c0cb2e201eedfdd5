"""`errdiscount demo`: the whole loop runs, says what happened, and leaves nothing behind."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from errdiscount_sdk._cli.demo import run_demo
from errdiscount_sdk._cli.main import main


def test_demo_tells_the_whole_story_and_stops_everything() -> None:
    out = io.StringIO()
    folders_before = set(Path(tempfile.gettempdir()).glob("errdiscount-demo-*"))

    assert run_demo(out) == 0

    text = out.getvalue()
    # the flaky endpoint: one network failure, one 503, then success
    assert "attempt 1 failed: network/minor, ConnectionLost" in text
    assert "attempt 2 failed: protocol/severe, ServiceUnavailable" in text
    assert "HTTP 200" in text
    # the business error with a verified voucher and an allowed alert URL
    assert "BusinessError" in text
    assert "PAY_001" in text
    assert "voucher verified" in text
    assert "NOT verified" not in text
    assert re.search(r"alert_url \(allowed\)\s+http://127\.0\.0\.1:\d+/v1/alerts/", text)
    # the popup shows the provider's PAY_001 texts, in the reader's language
    assert re.search(r"popup \(zh-CN\)\s+银行卡余额不足。 请更换支付方式或充值后重试。", text)
    assert re.search(r"popup \(en\)\s+Insufficient card balance\. Change the payment", text)
    # redeemed once, refused the second time, both in the ledger
    assert re.search(r"redemption\s+rdm_", text)
    assert "AlreadyRedeemed" in text
    assert "TOKEN_ALREADY_REDEEMED" in text
    assert re.search(r"#1\s+issued", text)
    assert re.search(r"#2\s+redeemed", text)
    # collection: the client's reporter sent each call's final outcome, redacted
    assert "What the server collected (GET /v1/events)" in text
    assert re.search(r"client\s+GET /api/balance\s+ok\s+status=200 attempts=3", text)
    assert re.search(
        r"client\s+POST /api/pay\s+error\s+status=402 attempts=1 error_code=PAY_001", text
    )
    assert '"card_number": "[Filtered]"' in text and '"amount": "<str:5>"' in text
    assert "6222020000001234" not in text  # the card number never left the app
    # the CRM stand-in got both events, signed, with the outbox id as webhook-id
    assert re.search(
        r"compensation\.issued\s+webhook-id=evt_\w+ subject=user-42 signature verified", text
    )
    assert re.search(
        r"compensation\.redeemed\s+webhook-id=evt_\w+ subject=user-42 signature verified", text
    )
    # a persistent failure compensated automatically, once, with its reason and ref
    assert "A persistent failure, compensated automatically" in text
    assert re.search(r"episode\s+ep_[0-9a-f]+ \(3 failures, per_user\)", text)
    assert re.search(r"reason / ref\s+episode / ep_[0-9a-f]+", text)
    # nothing left running or on disk
    server_url = re.search(r"server\s+(http://127\.0\.0\.1:\d+)", text)
    assert server_url is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(server_url.group(1) + "/healthz", timeout=2)
    assert set(Path(tempfile.gettempdir()).glob("errdiscount-demo-*")) == folders_before


def test_demo_is_a_cli_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "Done." in capsys.readouterr().out


def test_demo_runs_as_a_console_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "errdiscount_sdk", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AlreadyRedeemed" in result.stdout
