"""Schemathesis against docs/openapi.yaml and a live server: no 5xx, responses conform."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._server_support import ADMIN_KEY, ROOT, running

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


def test_schemathesis_finds_no_server_error_and_no_nonconformance(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis (st) is not installed in this environment")
    with running(tmp_path) as url:
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
                "examples,coverage,fuzzing",
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
