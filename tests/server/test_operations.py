"""Operations: /livez, /readyz, /metrics, request ids, JSON logs, ``migrate``."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from errdiscount_sdk.wire import RedemptionCode
from server_stub._main import main
from server_stub._state import store_errors
from server_stub.store import LATEST_VERSION, StoreError, StoreInputError
from server_stub.web._logging import JsonFormatter, MaskSecrets, mask_secrets
from server_stub.web._metrics import ServerMetrics
from server_stub.web._problems import HttpProblem
from tests.support.server_support import ADMIN_KEY, ROOT, ServerProcess, admin, running, token


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        if "{" in metric:
            base, _, rest = metric.partition("{")
            found = ",".join(sorted(rest.rstrip("}").split(",")))
        else:
            base, found = metric, ""
        if base == name and found == wanted:
            return float(value)
    raise AssertionError(f"{name}{{{wanted}}} not in metrics")


def test_livez_and_readyz_answer_when_the_schema_is_current(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        live = httpx.get(f"{url}/livez")
        ready = httpx.get(f"{url}/readyz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema_version": LATEST_VERSION}


def test_readyz_is_503_when_the_schema_is_not_the_one_the_server_expects(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        with sqlite3.connect(tmp_path / "server.db") as db:
            db.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, 0)",
                (LATEST_VERSION + 1, "from the future"),
            )
        ready = httpx.get(f"{url}/readyz")
        live = httpx.get(f"{url}/livez")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "SCHEMA_NOT_CURRENT"
    assert live.status_code == 200  # liveness never depends on the database


@pytest.mark.postgres
def test_readyz_is_503_when_the_database_is_gone(tmp_path: Path, postgres_database: str) -> None:
    import psycopg

    postgres_admin_dsn = postgres_database  # any database of the server will do to connect
    name = f"errdiscount_ready_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_admin_dsn.rsplit("/", 1)[0] + f"/{name}"  # no query in the fixture's URL
    try:
        with running(tmp_path, database=dsn) as url:
            assert httpx.get(f"{url}/readyz").status_code == 200
            with psycopg.connect(postgres_admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            ready = httpx.get(f"{url}/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert httpx.get(f"{url}/livez").status_code == 200
    finally:
        with psycopg.connect(postgres_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_metrics_need_the_admin_key(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        answer = httpx.get(f"{url}/metrics", headers=admin())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")


def test_metrics_count_requests_by_route_template_and_report_budgets(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        budget = httpx.put(
            f"{url}/v1/budgets/points/default",
            json={"total": 1000, "unit": "points"},
            headers=admin(),
        )
        assert budget.status_code == 200, budget.text
        for alert_id in ("a" * 22, "b" * 22, "c" * 22):
            assert httpx.get(f"{url}/v1/alerts/{alert_id}").status_code == 404
        text = httpx.get(f"{url}/metrics", headers=admin()).text
    assert (
        _sample(
            text,
            "errdiscount_requests_total",
            route="/v1/alerts/{alert_id}",
            method="GET",
            status="404",
        )
        == 3
    )
    # A label is the template: no alert id (a bearer capability) reaches the metrics.
    assert "a" * 22 not in text
    assert (
        _sample(
            text,
            "errdiscount_request_duration_seconds_count",
            route="/v1/alerts/{alert_id}",
            method="GET",
        )
        == 3
    )
    assert (
        _sample(
            text, "errdiscount_budget_remaining", kind="points", campaign="default", unit="points"
        )
        == 1000
    )


def test_request_id_is_echoed_when_valid_and_replaced_otherwise(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        given = httpx.get(f"{url}/livez", headers={"X-Request-Id": "req-42.abc:1"})
        forged = httpx.get(f"{url}/livez", headers={"X-Request-Id": "x" * 200})
        absent = httpx.get(f"{url}/livez")
        other = httpx.get(f"{url}/livez")
    assert given.headers["x-request-id"] == "req-42.abc:1"
    assert forged.headers["x-request-id"] != "x" * 200
    assert len(forged.headers["x-request-id"]) == 32
    assert absent.headers["x-request-id"] != other.headers["x-request-id"]


def test_mask_secrets_hides_alert_ids_tokens_and_bearer_keys() -> None:
    compact = token()
    line = f'GET /v1/alerts/SECRETALERTID123?lang=en "Authorization: Bearer {ADMIN_KEY}" {compact}'
    masked = mask_secrets(line)
    assert "SECRETALERTID123" not in masked
    assert ADMIN_KEY not in masked
    assert compact not in masked
    assert "/v1/alerts/SECR…" in masked


def test_json_formatter_writes_one_object_with_the_masked_message() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s %s", ("GET", "/v1/alerts/abcdef"), None
    )
    MaskSecrets().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /v1/alerts/abcd…"
    assert line["level"] == "info" and line["logger"] == "uvicorn.access"
    assert line["ts"].endswith("Z")


def test_server_with_json_logs_writes_json_lines_with_request_ids(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    args = [
        sys.executable, "-m", "server_stub", "--port", "0",
        "--database", f"sqlite:///{tmp_path}/s.db", "--signing-key", str(key),
        "--log-format", "json",
    ]  # fmt: skip
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split("listening on ", 1)[1].split()[0]
        httpx.get(f"{url}/v1/alerts/SECRETALERTID9999", headers={"X-Request-Id": "trace-7"})
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, err
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert access and access[0]["request_id"] == "trace-7"
    assert "SECRETALERTID9999" not in err


def test_migrate_check_exits_1_when_pending_and_0_once_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path}/m.db"
    assert main(["migrate", "--database", database, "--check"]) == 1
    assert "pending migrations" in capsys.readouterr().out
    # --check changed nothing: still pending.
    assert main(["migrate", "--database", database, "--check"]) == 1
    assert main(["migrate", "--database", database]) == 0
    assert main(["migrate", "--database", database, "--check"]) == 0
    assert "current" in capsys.readouterr().out


def test_migrate_refuses_a_newer_schema_and_bad_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path}/m.db"
    assert main(["migrate", "--database", database]) == 0
    with sqlite3.connect(tmp_path / "m.db") as db:
        db.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'x', 0)",
            (LATEST_VERSION + 1,),
        )
    assert main(["migrate", "--database", database, "--check"]) == 3
    assert main(["migrate", "--database", "mysql://nope"]) == 2
    err = capsys.readouterr().err
    assert "newer than this code" in err and "Traceback" not in err


def test_server_process_still_serves_with_the_new_middlewares(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/p.db", tmp_path / "k.pem")
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()


def test_redemption_counters_equal_what_was_answered(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        budget = httpx.put(
            f"{url}/v1/budgets/points/points",
            json={"total": 150, "unit": "points"},
            headers=admin(),
        )
        assert budget.status_code == 200, budget.text
        first, second, third = token(), token(), token()

        def redeem(raw: str, key: str | None = None) -> httpx.Response:
            headers = {"Idempotency-Key": key} if key else {}
            return httpx.post(f"{url}/v1/redemptions", json={"token": raw}, headers=headers)

        assert redeem(first, "k1").status_code == 201
        assert redeem(first, "k1").headers.get("Idempotent-Replayed") == "true"
        assert redeem(first, "k2").json()["error_code"] == RedemptionCode.ALREADY_REDEEMED
        assert (
            redeem(second).json()["error_code"] == RedemptionCode.BUDGET_EXHAUSTED
        )  # 50 points left
        bad = redeem("not-a-token", "k3")
        assert bad.status_code in (400, 401, 422), bad.text
        fifty = token(compensation={"kind": "points", "amount": 50, "unit": "points"})
        assert redeem(fifty).status_code == 201  # unkeyed: the same counters
        assert redeem(third, "k4").json()["error_code"] == RedemptionCode.BUDGET_EXHAUSTED
        text = httpx.get(f"{url}/metrics", headers=admin()).text
    counted = {
        outcome: _sample(text, "errdiscount_redemptions_total", outcome=outcome)
        for outcome in ("redeemed", "replayed", "refused")
    }
    assert counted == {"redeemed": 2, "replayed": 1, "refused": 4}
    assert (
        _sample(text, "errdiscount_refusals_total", error_code=RedemptionCode.ALREADY_REDEEMED) == 1
    )
    assert (
        _sample(text, "errdiscount_refusals_total", error_code=RedemptionCode.BUDGET_EXHAUSTED) == 2
    )
    assert _sample(text, "errdiscount_refusals_total", error_code=bad.json()["error_code"]) == 1
    assert _sample(text, "errdiscount_redeem_batch_size_count") == 6  # every store redemption


def test_store_errors_are_counted_by_the_problem_they_become() -> None:
    metrics = ServerMetrics()
    for error in (StoreError("busy", retryable=True), StoreError("gone"), StoreError("gone")):
        with pytest.raises(HttpProblem), store_errors(metrics):
            raise error
    with pytest.raises(HttpProblem), store_errors(metrics):
        raise StoreInputError("subject")  # bad input (422), not a store failure
    text = metrics.render().decode()
    assert _sample(text, "errdiscount_store_errors_total", kind="STORE_BUSY") == 1
    assert _sample(text, "errdiscount_store_errors_total", kind="STORE_UNAVAILABLE") == 2
