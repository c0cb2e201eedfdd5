"""The SQLite back end: stdlib sqlite3, one connection per thread, WAL.

Policy:
- ``journal_mode=WAL`` (readers never block the writer), ``synchronous=FULL`` (a
  committed redemption survives power loss, not only a process crash),
  ``wal_autocheckpoint`` 4000 pages (fewer, larger checkpoints),
  ``foreign_keys=ON``, ``busy_timeout`` (default 10 s) for other processes' writers.
- Every write transaction starts with ``BEGIN IMMEDIATE``: it takes the database's
  write lock up front, so two writers never both read and then both write; the
  conditional updates then run strictly one after another, across threads *and*
  processes sharing the file. Within one process a lock queues writers first, so the
  file lock is not contended by busy-polling threads.
- Reads run in a deferred transaction (one consistent WAL snapshot).
- `run_now` (for the server's event loop): the same transaction, on the calling
  thread's own connection, but only if both locks are free at once: the in-process
  lock is tried without blocking and that connection's busy timeout is 0, so a busy
  file lock fails at ``BEGIN IMMEDIATE`` (`WouldBlock`, nothing ran) instead of
  sleeping. A ``SQLITE_BUSY`` later in the transaction rolls it back and is also
  `WouldBlock`: the caller runs it again with `run`, on a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

from ._base import Dialect, Tx
from ._errors import StoreError, WouldBlock

T = TypeVar("T")

MIN_SQLITE = (3, 35, 0)  # RETURNING
#: WAL frames between automatic checkpoints (SQLite's default: 1000). A checkpoint
#: copies each page once however often it was rewritten, so fewer, larger ones write
#: far fewer pages per redemption; the WAL stays below ~16 MB, and every commit is
#: still fsynced to the WAL first (synchronous=FULL), so durability is unchanged.
WAL_CHECKPOINT_PAGES = 4000


def _translate(sql: str) -> str:
    return sql


class SqliteDialect(Dialect):
    name = "sqlite"
    # Not AUTOINCREMENT: that writes the sqlite_sequence table on every insert. Rows of
    # these tables (ledger, coupon codes) are never deleted, so max(rowid) + 1 never
    # reuses an id anyway.
    auto_id = "INTEGER PRIMARY KEY"
    blob = "BLOB"
    without_rowid = " WITHOUT ROWID"
    runs_now = True

    @contextlib.contextmanager
    def try_exclusive(self, key: int) -> Iterator[bool]:
        """The process-local lock, then a non-blocking ``flock`` on ``<db>-lock-<key>``
        (several server processes may share one SQLite file: ``--workers``)."""
        with super().try_exclusive(key) as got:
            if not got:
                yield False
                return
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: one process only
                yield True
                return
            fd = os.open(f"{self._path}-lock-{key:x}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __init__(self, path: str, *, busy_timeout: timedelta = timedelta(seconds=10)) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; 3.35 or later needed")
        self._path = path
        self._busy_ms = int(busy_timeout.total_seconds() * 1000)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._registry_lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            raise StoreError("the store is closed")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread is off
        # only so close() can close every thread's connection; each is used by one thread.
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=0
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            self._enable_wal(connection)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            connection.close()
            raise
        with self._registry_lock:
            self._connections.append(connection)
        self._local.connection = connection
        self._local.waits = True
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        # WAL is persistent in the file, so usually it is already on. Switching needs an
        # exclusive lock and SQLite does not always call the busy handler for it (several
        # processes opening a new file at once), so retry for up to the busy timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        pause = 0.005
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
                continue
            if str(mode).lower() != "wal":
                raise StoreError(f"sqlite: cannot switch to WAL (journal mode is {mode})")
            return

    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        try:
            if write:
                with self._write_lock:
                    return self._run(work, "BEGIN IMMEDIATE")
            return self._run(work, "BEGIN")
        except sqlite3.Error as exc:
            raise _wrap(exc) from exc

    def run_now(self, work: Callable[[Tx], T], *, write: bool) -> T:
        lock = self._write_lock if write else None
        if lock is not None and not lock.acquire(blocking=False):
            raise WouldBlock()
        try:
            return self._run(work, "BEGIN IMMEDIATE" if write else "BEGIN", wait=False)
        except sqlite3.Error as exc:
            raise (WouldBlock() if _is_busy(exc) else _wrap(exc)) from exc
        finally:
            if lock is not None:
                lock.release()

    def _run(self, work: Callable[[Tx], T], begin: str, *, wait: bool = True) -> T:
        connection = self._connection()
        if self._local.waits is not wait:
            connection.execute(f"PRAGMA busy_timeout = {self._busy_ms if wait else 0}")
            self._local.waits = wait
        cursor = connection.cursor()
        cursor.execute(begin)
        try:
            result = work(Tx(cursor, _translate))
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        # A failed COMMIT leaves the transaction open in SQLite: roll back explicitly so
        # the connection is clean for the next call.
        try:
            connection.execute("COMMIT")
        except sqlite3.Error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return result

    def lock_for_migration(self, tx: Tx) -> None:
        """``BEGIN IMMEDIATE`` already holds the write lock for the whole migration."""

    def close(self) -> None:
        self._closed = True
        with self._registry_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()


def _wrap(exc: sqlite3.Error) -> StoreError:
    # Only the error class and SQLite's own message (no paths, no values) go out.
    return StoreError(f"sqlite: {type(exc).__name__}: {exc}", retryable=_is_busy(exc))


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )
