"""Shared fixtures: a store on each back end (a real SQLite file, a real PostgreSQL).

PostgreSQL: the DSN comes from ``ERRDISCOUNT_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``). The session creates a fresh database
``errdiscount_test_<random>`` through it and drops it at the end; every test gets its own
schema in that database. With no server answering, PostgreSQL tests skip with the
reason, unless ``ERRDISCOUNT_REQUIRE_POSTGRES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from server_stub.store import Store, open_store

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"

# Chromium and live-server fixtures of the front-end tests.
pytest_plugins = ["tests.support.browser"]


class FakeClock:
    """A settable clock for the store: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _with_database(dsn: str, database: str, *, schema: str | None = None) -> str:
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qsl(parts.query)
    if schema is not None:
        query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(
        parts._replace(path="/" + database, query=urllib.parse.urlencode(query))
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for this test session."""
    import psycopg

    dsn = os.environ.get("ERRDISCOUNT_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        reason = f"PostgreSQL not reachable via ERRDISCOUNT_TEST_POSTGRES_DSN or default ({exc})"
        if os.environ.get("ERRDISCOUNT_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and ERRDISCOUNT_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    name = f"errdiscount_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield _with_database(dsn, name)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A URL naming an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    import psycopg

    database = request.getfixturevalue("postgres_database")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return _with_database(database, urllib.parse.urlsplit(database).path[1:], schema=schema)


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    with open_store(store_url, clock=clock) as opened:
        yield opened
