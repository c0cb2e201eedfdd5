"""``errdiscount-server`` as an operator runs it: exit codes, one-line errors, --workers.

Real subprocesses (``python -m server_stub``); docs/server.md states the exit codes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server_stub._main import _listen
from server_stub.store import open_store
from tests.support.server_support import ROOT, ServerProcess
from tests.support.store_support import raw_execute

pytestmark = pytest.mark.slow


def run_server(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env = {k: v for k, v in env.items() if not k.startswith("ERRDISCOUNT_") or "TEST" in k}
    return subprocess.run(
        [sys.executable, "-m", "server_stub", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"errdiscount-server: error: {errors[0].split('error: ', 1)[1]}"]
    assert text in errors[0]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--rate-ip", "nan"), "--rate-ip"),
        (("--rate-ip", "inf"), "--rate-ip"),
        (("--rate-subject", "-1"), "--rate-subject"),
        (("--rate-burst", "0.5"), "--rate-burst"),
        (("--workers", "0"), "--workers"),
        (("--database", "mysql://db/x"), "database URL"),
    ],
)
def test_bad_settings_exit_2_with_one_line(args, flag) -> None:
    assert_one_line_error(run_server(*args), 2, flag)


def test_an_unreachable_database_exits_1_with_one_line() -> None:
    result = run_server("--database", "postgresql://nobody@127.0.0.1:1/none")
    assert_one_line_error(result, 1, "cannot open the database")


def test_a_newer_schema_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/future.db"
    open_store(url).close()
    raw_execute(
        url,
        "INSERT INTO schema_version (version, description, applied_at) VALUES (999, 'future', 0)",
    )
    assert_one_line_error(run_server("--database", url), 1, "newer")


def test_workers_get_every_setting(tmp_path: Path) -> None:
    # --demo and --frame-ancestor were lost on the way to the workers; each worker
    # answers here, whichever the kernel hands the connection to.
    server = ServerProcess(
        f"sqlite:///{tmp_path}/workers.db",
        tmp_path / "key.pem",
        "--workers",
        "2",
        "--demo",
        "--frame-ancestor",
        "https://shop.example",
        "--public-url",
        "https://pay.example",
    )
    try:
        assert not server.url.endswith(":0")
        for _ in range(8):
            with httpx.Client(base_url=server.url) as http:  # a new connection each time
                page = http.get("/demo")
                assert page.status_code == 200
                assert (
                    "frame-ancestors https://shop.example"
                    in page.headers["content-security-policy"]
                )
                paid = http.post("/demo/api/pay")
                assert paid.json()["alert_url"].startswith("https://pay.example/v1/alerts/")
    finally:
        server.stop()


def test_workers_connections_do_not_wait_for_delayed_acks() -> None:
    # uvicorn wraps the workers' shared fd as AF_UNIX, so asyncio never sets TCP_NODELAY
    # on what they accept; without it from the listener, every response's second write
    # waited ~40 ms for the client's delayed ACK (2 workers ran at half of one).
    listener = _listen("127.0.0.1", 0)
    try:
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_alert_ids_are_masked_in_the_access_log(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [
            sys.executable, "-m", "server_stub", "--port", "0",
            "--database", f"sqlite:///{tmp_path}/log.db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        url = ""
        for line in process.stdout:
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0]
                break
        alert_id = "Secret-Alert-Id-0123456789abcdef"
        assert httpx.get(f"{url}/v1/alerts/{alert_id}?lang=en").status_code == 404
        assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=20)
    assert alert_id not in rest
    assert "/v1/alerts/Secr…?lang=en" in rest
    assert "/healthz" in rest
