"""Two server processes on one PostgreSQL database: events posted to both, detector
runs triggered on both at once, the same compensations issued exactly once."""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.server_support import APP_KEY, ServerProcess, admin

DSN = os.environ.get("ERRDISCOUNT_TEST_POSTGRES_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="ERRDISCOUNT_TEST_POSTGRES_DSN is not set")
APP = {"Authorization": f"Bearer {APP_KEY}"}
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)


@pytest.fixture
def database() -> Iterator[str]:
    assert DSN is not None
    name = "detreplicas_" + uuid.uuid4().hex[:10]
    with psycopg.connect(DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def failure(user: str, minutes: float, endpoint: str = "POST /api/pay") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
        "kind": "call",
        "method": endpoint.split(" ", 1)[0],
        "outcome": "error",
        "user_id": user,
        "endpoint": endpoint,
        "status": 503,
        "category": "protocol",
        "error_code": "PAY_DOWN",
        "attempts": 3,
        "source": "client",
    }


def test_two_replicas_issue_each_compensation_exactly_once(database: str, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"  # the first server creates it, the second reads it
    flags = ("--app-key", APP_KEY, "--detector-interval", "0", "--auto-compensate", "on")
    first = ServerProcess(database, key, *flags)
    try:
        second = ServerProcess(database, key, *flags)
        try:
            users = [f"user{n}" for n in range(12)]
            for index, user in enumerate(users):
                # Each user's three failures go to alternating replicas.
                for step, minutes in enumerate((0, 3, 6)):
                    url = (first, second)[(index + step) % 2].url
                    answer = httpx.post(
                        f"{url}/v1/events", json={"events": [failure(user, minutes)]}, headers=APP
                    )
                    assert answer.status_code == 202, answer.text

            def run(url: str) -> dict[str, Any]:
                answer = httpx.post(f"{url}/v1/detector/run", headers=admin(), timeout=60)
                assert answer.status_code == 200, answer.text
                result: dict[str, Any] = answer.json()
                return result

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                reports = list(pool.map(run, [first.url, second.url] * 3))
            assert sum(r["issued"] for r in reports) == len(users)
            assert any(r["ran"] for r in reports)
            for url in (first.url, second.url):
                rows = httpx.get(
                    f"{url}/v1/auto-compensations", params={"limit": 1000}, headers=admin()
                ).json()["auto_compensations"]
                assert sorted((r["user_id"], r["status"]) for r in rows) == [
                    (u, "issued") for u in sorted(users)
                ]
                ledger = httpx.get(
                    f"{url}/v1/ledger", params={"limit": 1000}, headers=admin()
                ).json()["entries"]
                issued = [r["subject"] for r in ledger if r["event"] == "issued"]
                assert sorted(issued) == sorted(users)
            for user in users:
                mine = httpx.get(f"{second.url}/v1/users/{user}/compensations", headers=APP)
                assert [c["reason"] for c in mine.json()["issued"]] == ["episode"]
        finally:
            second.stop()
    finally:
        first.stop()
