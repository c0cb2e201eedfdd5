"""`errdiscount demo`: the whole loop runs, says what happened, and leaves nothing behind.

With ``--amqp-url`` it also shows a queue on the real RabbitMQ (127.0.0.1:5672) receiving
the events the CRM stand-in received, under the same ids.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import aio_pika.exceptions
import httpx
import pytest

from errdiscount_sdk._cli.demo import run_demo
from errdiscount_sdk._cli.main import main

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _exchange_exists(name: str) -> bool:
    async def check() -> bool:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            try:
                await channel.get_exchange(name, ensure=True)  # a passive declare
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return False
            return True
        finally:
            await connection.close()

    return asyncio.run(check())


def _delete_exchange(name: str) -> None:
    async def delete() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            await channel.exchange_delete(name)
        finally:
            await connection.close()

    asyncio.run(delete())


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
    # no broker given: the message-queue step says how to see it, and the tour goes on
    assert "The message queue got it too (RabbitMQ → the CRM's SMS/email)" in text
    assert (
        "pass --amqp-url amqp://guest:guest@127.0.0.1:5672/ to watch a RabbitMQ queue too" in text
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


def test_demo_runs_as_a_console_entry_point_with_a_named_exchange_it_keeps() -> None:
    exchange = f"errdiscount-test-{secrets.token_hex(4)}"
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "errdiscount_sdk", "demo"),
                *("--amqp-url", AMQP_URL, "--amqp-exchange", exchange),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "AlreadyRedeemed" in result.stdout
        assert f"exchange / binding     {exchange} / compensation.*" in result.stdout
        assert _exchange_exists(exchange)  # the operator's exchange is not the demo's to delete
    finally:
        _delete_exchange(exchange)


def _ids_by_type(text: str, id_name: str) -> dict[str, str]:
    found = re.findall(rf"(compensation\.\w+)\s+{id_name}=(evt_\w+)", text)
    return dict(found)


def test_demo_with_rabbitmq_shows_a_queue_receiving_what_the_crm_received() -> None:
    out = io.StringIO()

    assert run_demo(out, amqp_url=AMQP_URL) == 0

    text = out.getvalue()
    webhook_step, queue_step = text.split("The message queue got it too", 1)
    webhooks = _ids_by_type(webhook_step, "webhook-id")
    messages = _ids_by_type(queue_step.split("What the server collected", 1)[0], "message_id")
    assert set(webhooks) == {"compensation.issued", "compensation.redeemed"}
    assert messages == webhooks  # the same event, under the same id, on both sinks
    assert queue_step.count("persistent (delivery mode 2), same id as its webhook") == 2
    assert "NOT persistent" not in text
    exchange = re.search(
        r"exchange / binding\s+(errdiscount-demo-[0-9a-f]+) / compensation\.\*", text
    )
    assert exchange is not None
    assert "Done." in text
    # the exchange it made up is deleted, its consumer thread gone (the queue died with it)
    assert not _exchange_exists(exchange.group(1))
    assert not any(t.name == "demo-amqp-consumer" for t in threading.enumerate())


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.mark.parametrize("broker", ["closed port", "wrong password"])
def test_demo_with_an_unusable_broker_fails_in_one_line(closed_port: int, broker: str) -> None:
    password = secrets.token_hex(8)
    if broker == "closed port":
        url, why = f"amqp://guest:{password}@127.0.0.1:{closed_port}/", "AMQPConnectionError"
    else:
        url, why = f"amqp://guest:{password}@127.0.0.1:5672/", "ACCESS_REFUSED"
    folders_before = set(Path(tempfile.gettempdir()).glob("errdiscount-demo-*"))

    result = subprocess.run(
        [sys.executable, "-m", "errdiscount_sdk", "demo", "--amqp-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("The demo failed: cannot use RabbitMQ at 127.0.0.1:")
    assert why in lines[0]
    assert result.stderr == ""  # no traceback, nor the libraries' own log lines
    assert password not in result.stdout
    assert set(Path(tempfile.gettempdir()).glob("errdiscount-demo-*")) == folders_before
