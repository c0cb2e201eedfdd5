"""The backup and restore runbook of docs/server.md, run for real on both stores.

A server redeems (with an Idempotency-Key) and an admin sets a budget; the database is
backed up while the server runs, then restored into a fresh file or database, and a
server on the copy must behave as the original would have: the keyed retry replays
the very same response, the spent token stays spent under another key, the budget is
where it was, and new tokens redeem.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEFAULT_POSTGRES_DSN
from tests.support.server_support import admin, running, token

pytestmark = pytest.mark.slow


def _before(url: str) -> tuple[str, bytes]:
    """Redeem one token with a key and set a budget; returns (token, response body)."""
    httpx.put(
        f"{url}/v1/budgets/points/*", json={"total": 1000, "unit": "points"}, headers=admin()
    ).raise_for_status()
    minted = token("alice")
    response = httpx.post(
        f"{url}/v1/redemptions", json={"token": minted}, headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201
    return minted, response.content


def _after(url: str, minted: str, body: bytes) -> None:
    replay = httpx.post(
        f"{url}/v1/redemptions", json={"token": minted}, headers={"Idempotency-Key": "k-1"}
    )
    assert (replay.status_code, replay.content) == (201, body)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    again = httpx.post(
        f"{url}/v1/redemptions", json={"token": minted}, headers={"Idempotency-Key": "k-2"}
    )
    assert (again.status_code, again.json()["error_code"]) == (409, "TOKEN_ALREADY_REDEEMED")
    budgets = httpx.get(f"{url}/v1/budgets", headers=admin()).json()["budgets"]
    assert [(b["kind"], b["remaining"]) for b in budgets] == [("points", 900)]
    fresh = httpx.post(f"{url}/v1/redemptions", json={"token": token("bob")})
    assert fresh.status_code == 201
    entries = httpx.get(f"{url}/v1/ledger", headers=admin()).json()["entries"]
    assert [e["event"] for e in entries] == ["budget_set", "redeemed", "redeemed"]


def _sqlite_cli_backup(source: Path, target: Path) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command-line shell is not installed")
    subprocess.run(["sqlite3", str(source), f".backup '{target}'"], check=True)


def _vacuum_into(source: Path, target: Path) -> None:
    connection = sqlite3.connect(source)
    try:
        connection.execute("VACUUM INTO ?", [str(target)])
    finally:
        connection.close()


@pytest.mark.parametrize("backup", [_sqlite_cli_backup, _vacuum_into], ids=["backup", "vacuum"])
def test_sqlite_backup_taken_while_serving_restores_exactly(
    tmp_path: Path, backup: Callable[[Path, Path], None]
) -> None:
    live, copy = tmp_path / "live.db", tmp_path / "restore" / "errdiscount.db"
    copy.parent.mkdir()
    with running(tmp_path, database=f"sqlite:///{live}") as url:
        minted, body = _before(url)
        backup(live, copy)  # while the server runs
    with running(tmp_path, database=f"sqlite:///{copy}") as url:
        _after(url, minted, body)


@pytest.fixture
def postgres_pair() -> Iterator[tuple[str, str]]:
    """Two fresh, empty PostgreSQL databases: the live one and the restore target."""
    import psycopg

    dsn = os.environ.get("ERRDISCOUNT_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore are not installed")
    try:
        server = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable ({exc})")
    names = [f"errdiscount_bk_{secrets.token_hex(4)}" for _ in range(2)]
    base = dsn.rsplit("/", 1)[0]
    with server:
        for name in names:
            server.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{base}/{names[0]}", f"{base}/{names[1]}"
        finally:
            for name in names:
                server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_postgresql_dump_restored_into_a_fresh_database_behaves_the_same(
    tmp_path: Path, postgres_pair: tuple[str, str]
) -> None:
    live, fresh = postgres_pair
    dump = tmp_path / "errdiscount.dump"
    with running(tmp_path, database=live) as url:
        minted, body = _before(url)
        # As in docs/server.md: a consistent snapshot while serving, custom format.
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", live], check=True
        )
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={fresh}", str(dump)],
        check=True,
    )
    with running(tmp_path, database=fresh) as url:
        _after(url, minted, body)
