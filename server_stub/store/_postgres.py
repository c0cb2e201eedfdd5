"""The PostgreSQL back end: psycopg 3 with a psycopg_pool.ConnectionPool.

Policy:
- READ COMMITTED. That is enough because every contended write is a single conditional
  statement whose row lock decides the race: ``INSERT ... ON CONFLICT (jti) DO
  NOTHING`` (a second inserter waits for the first to commit, then sees the conflict),
  ``UPDATE budgets ... WHERE remaining >= :amount`` (re-evaluated on the newest row
  version after the wait), and the per-pool counter row that serializes code claims.
- Serialization failures and deadlocks roll the transaction back entirely, so the work
  is retried (at most ``retries`` times) with a fresh transaction. Any other error is
  raised as `StoreError`; a connection lost during COMMIT is reported as not
  retryable, because its outcome is unknown (a retry with the same jti or idempotency
  key is still safe: it returns AlreadyRedeemed / the replay).
- Connections run in autocommit mode and every unit of work opens an explicit
  transaction, so nothing is ever left open in the pool.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import psycopg_pool

from ._base import Dialect, Tx
from ._errors import StoreError

T = TypeVar("T")

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_MIGRATION_LOCK = 0x65727264_69736300  # "errdisc\0": one advisory lock per database
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


@functools.lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """``:name`` parameters to psycopg's ``%(name)s`` (and a literal % to %%)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class PostgresDialect(Dialect):
    name = "postgresql"
    auto_id = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    blob = "BYTEA"
    without_rowid = ""  # a heap table with its primary-key index, as always

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: timedelta = timedelta(seconds=10),
        retries: int = 5,
    ) -> None:
        self._retries = retries
        self._pool = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout.total_seconds(),
            kwargs={"autocommit": True},
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="errdiscount-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout.total_seconds())
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            # The DSN may hold a password: never echo it.
            raise StoreError("postgresql: no connection to the database server") from exc

    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._run_once(work, write=write)
            except _RETRYABLE as exc:
                if attempt > self._retries:
                    raise StoreError(
                        f"postgresql: {type(exc).__name__} after {attempt} attempts",
                        retryable=True,
                    ) from exc
            except psycopg_pool.PoolTimeout as exc:
                raise StoreError("postgresql: connection pool exhausted", retryable=True) from exc
            except psycopg.OperationalError as exc:
                raise StoreError(f"postgresql: {type(exc).__name__}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"postgresql: {type(exc).__name__}: {_message(exc)}") from exc

    def _run_once(self, work: Callable[[Tx], T], *, write: bool) -> T:
        with self._pool.connection() as connection, connection.transaction():
            if not write:
                connection.execute("SET TRANSACTION READ ONLY")
            with connection.cursor() as cursor:
                return work(PostgresTx(cursor, translate))

    @contextlib.contextmanager
    def try_exclusive(self, key: int) -> Iterator[bool]:
        """``pg_try_advisory_lock`` on a connection of its own, held for the block.

        Session-level, so it spans the many transactions of the block; if the
        process dies the session ends and PostgreSQL releases it.
        """
        try:
            with self._pool.connection() as connection:
                row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                got = bool(row and row[0])
                try:
                    yield got
                finally:
                    if got:
                        connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError("postgresql: connection pool exhausted", retryable=True) from exc
        except psycopg.Error as exc:
            raise StoreError(f"postgresql: {type(exc).__name__}") from exc

    def lock_for_migration(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _MIGRATION_LOCK})

    def close(self) -> None:
        self._pool.close()


class PostgresTx(Tx):
    """`Tx` with arrays and a pipelined ``executemany(..., returning=True)``."""

    arrays = True

    def executemany_returning(
        self, sql: str, params: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        if not params:
            return []
        cursor = self._cursor
        cursor.executemany(self._translate(sql), params, returning=True)
        rows: list[dict[str, Any]] = []
        while True:
            if cursor.description is not None:
                names = [column[0] for column in cursor.description]
                rows.extend(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
            if not cursor.nextset():
                return rows


def _message(exc: psycopg.Error) -> str:
    # The primary message only: DETAIL lines can quote row values.
    return exc.diag.message_primary or "database error"
