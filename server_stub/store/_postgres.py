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
- No ping per checkout (it is a round trip per transaction): a connection found broken
  when used is discarded by the pool, and work that failed on it before its commit was
  sent is run once more on a fresh connection (reconnect on error).
- `run_pipelined` (keyed redemption batches): ``BEGIN`` + one statement in one round
  trip, then the follow-up statement + ``COMMIT`` in a second one (psycopg pipeline).
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
from ._errors import BudgetMoved, IdempotencyKeyLost, StoreError
from ._pg_functions import BUDGET_MOVED, KEY_LOST

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
            open=False,
            name="errdiscount-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout.total_seconds())
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            # The DSN may hold a password: never echo it.
            raise StoreError("postgresql: no connection to the database server") from exc

    @property
    def max_connections(self) -> int:
        return int(self._pool.max_size)

    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        return self._retrying(lambda: self._run_once(work, write=write))

    def run_pipelined(
        self,
        sql: str,
        params: Mapping[str, Any],
        follow: Callable[[Any], Sequence[tuple[str, Mapping[str, Any]]]],
    ) -> Any:
        """One transaction in two round trips; returns the first statement's one value.

        ``BEGIN`` and ``sql`` go in one round trip; ``follow(value)`` gives the next
        statements (maybe none), sent with ``COMMIT`` in another. ``follow`` runs again if
        the transaction is retried. A database error raised by the second statement
        rolls everything back, as any error does.
        """
        return self._retrying(lambda: self._pipelined_once(sql, params, follow))

    def _retrying(self, once: Callable[[], T]) -> T:
        attempt = 0
        reconnected = False
        while True:
            attempt += 1
            try:
                return once()
            except _BrokenBeforeCommit as broken:
                if reconnected:
                    raise StoreError("postgresql: connection lost") from broken.__cause__
                reconnected = True
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
                if exc.sqlstate == KEY_LOST:
                    raise IdempotencyKeyLost() from exc
                if exc.sqlstate == BUDGET_MOVED:
                    raise BudgetMoved() from exc
                raise StoreError(f"postgresql: {type(exc).__name__}: {_message(exc)}") from exc

    def _run_once(self, work: Callable[[Tx], T], *, write: bool) -> T:
        with self._pool.connection() as connection:
            committing = False
            try:
                with connection.transaction():
                    if not write:
                        connection.execute("SET TRANSACTION READ ONLY")
                    with connection.cursor() as cursor:
                        result = work(PostgresTx(cursor, translate))
                    committing = True
                return result
            except psycopg.OperationalError as exc:
                if connection.closed and not committing:
                    raise _BrokenBeforeCommit() from exc
                raise

    def _pipelined_once(
        self,
        sql: str,
        params: Mapping[str, Any],
        follow: Callable[[Any], Sequence[tuple[str, Mapping[str, Any]]]],
    ) -> Any:
        with self._pool.connection() as connection:
            committing = False
            try:
                with connection.pipeline() as pipeline, connection.cursor() as cursor:
                    connection.execute("BEGIN")
                    # Binary parameters: psycopg quotes every element of a text-format
                    # array in Python (a batch's 32 event payloads took ~0.4 ms that
                    # way, 6 us in binary).
                    cursor.execute(translate(sql), params, binary=True)
                    row = cursor.fetchone()  # the first round trip
                    value = None if row is None else row[0]
                    for statement, values in follow(value):
                        cursor.execute(translate(statement), values, binary=True)
                    committing = True
                    connection.execute("COMMIT")
                    pipeline.sync()  # the second round trip
                return value
            except psycopg.OperationalError as exc:
                if connection.closed and not committing:
                    raise _BrokenBeforeCommit() from exc
                raise
            except BaseException:
                if not connection.closed and connection.info.transaction_status != _IDLE:
                    connection.execute("ROLLBACK")
                raise

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


_IDLE = psycopg.pq.TransactionStatus.IDLE


class _BrokenBeforeCommit(Exception):
    """The connection broke before COMMIT was sent: nothing was committed, run again."""


def _message(exc: psycopg.Error) -> str:
    # The primary message only: DETAIL lines can quote row values.
    return exc.diag.message_primary or "database error"
