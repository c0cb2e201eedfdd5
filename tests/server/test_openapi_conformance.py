"""Schemathesis against docs/openapi.yaml and a live server: no 5xx, responses conform.

The stateful phase follows the spec's links (POST /v1/tokens → GET /v1/alerts/{alert_id}),
so real alerts are fetched and their JSON checked against ``AlertContent``; the test
counts what reached the alert endpoint to prove it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from server_stub import create_app
from tests.support.server import serve
from tests.support.server_support import ADMIN_KEY, APP_KEY, ROOT, settings, shared_key

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


def counting_alert_statuses(app: Any, seen: Counter[int]) -> Any:
    """Wrap an ASGI app: count the response statuses of GET /v1/alerts/..."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/alerts/"):
            await app(scope, receive, send)
            return

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "GET":
                seen[message["status"]] += 1
            await send(message)

        await app(scope, receive, record)

    return wrapped


def test_schemathesis_finds_no_server_error_and_no_nonconformance(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis (st) is not installed in this environment")
    alert_statuses: Counter[int] = Counter()
    app = create_app(settings(tmp_path), signing_key=shared_key())
    with serve(counting_alert_statuses(app, alert_statuses)) as url:
        result = subprocess.run(
            [
                st,
                "run",
                str(ROOT / "docs" / "openapi.yaml"),
                "--url",
                url,
                "--header",
                f"Authorization: Bearer {ADMIN_KEY}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "15",
                "--max-time",
                "25",
                "--seed",
                "1",
                "--workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-4000:]
    # Real alerts (reached through the link from POST /v1/tokens) and unknown ids.
    assert alert_statuses[200] > 0 and alert_statuses[404] > 0, alert_statuses


def test_schemathesis_with_an_app_key_on_the_ingestion_routes(tmp_path: Path) -> None:
    """The run above sends the admin key, which ingestion refuses: exercise it for real."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis (st) is not installed in this environment")
    app = create_app(settings(tmp_path), signing_key=shared_key())
    with serve(app) as url:
        result = subprocess.run(
            [
                st, "run", str(ROOT / "docs" / "openapi.yaml"), "--url", url,
                "--header", f"Authorization: Bearer {APP_KEY}",
                "--include-path-regex", "^/v1/(events|traces)$",
                "--checks", CHECKS, "--phases", "examples,coverage,fuzzing",
                "--max-examples", "25", "--max-time", "20", "--seed", "1", "--workers", "1",
            ],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert "3 selected" in result.stdout
