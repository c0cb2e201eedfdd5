"""What both back ends share: the dialect interface, the transaction handle, helpers.

Every piece of business logic (redeem, reverse, idempotency, admin) is written once
against `Tx` and run by a `Dialect`, which owns connections, the transaction start
(``BEGIN IMMEDIATE`` on SQLite), bounded retries of serialization failures
(PostgreSQL) and the translation of driver exceptions into `StoreError`.

SQL is written once with ``:name`` parameters; the PostgreSQL dialect rewrites them to
``%(name)s``. Only the portable subset common to SQLite >= 3.35 and PostgreSQL >= 12
is used: ``INSERT ... ON CONFLICT``, ``RETURNING``, partial indexes, savepoints.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from ._errors import StoreInputError, WouldBlock
from ._models import LedgerEvent

T = TypeVar("T")

Row = dict[str, Any]

# Size caps on everything the store accepts (characters unless said otherwise).
MAX_ID = 128  # jti, redemption ids, alert ids, pool and campaign names
MAX_NAME = 256  # subject, issuer
MAX_SHORT = 64  # kind, unit, cap scope
MAX_CODE = 128  # one coupon code
MAX_CODES_PER_LOAD = 100_000
MAX_REASON = 1_000
MAX_IDEMPOTENCY_KEY = 255  # as Stripe; the draft sets no limit
MAX_FINGERPRINT = 128
MAX_BODY_BYTES = 256 * 1024
MAX_TOKEN = 16 * 1024
MAX_AMOUNT = 2**53  # exact in JSON numbers and in every driver
MAX_PAGE = 1_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Lone surrogates: valid in a Python str, unencodable by sqlite3 and psycopg alike.
_SURROGATE = re.compile("[\ud800-\udfff]")


_EXCLUSIVE_GUARD = threading.Lock()


class Tx:
    """One open transaction: run statements, read rows as dicts."""

    #: True when a list binds as an array (PostgreSQL): bulk writes can then be one
    #: ``INSERT ... SELECT * FROM unnest(...)`` statement instead of one per row.
    arrays: ClassVar[bool] = False

    def __init__(self, cursor: Any, translate: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._translate = translate

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""
        self._cursor.execute(self._translate(sql), params or {})
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per parameter set (the driver's batched path)."""
        if params:
            self._cursor.executemany(self._translate(sql), params)

    def executemany_returning(self, sql: str, params: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Run a ``... RETURNING`` statement once per parameter set; all returned rows.

        This version runs the (cached, prepared) statement once per set: right for an
        in-process database. Back ends with a network round trip override it.
        """
        cursor = self._cursor
        translated = self._translate(sql)
        rows: list[Row] = []
        for one in params:
            cursor.execute(translated, one)
            fetched = cursor.fetchall()
            if fetched:
                names = [column[0] for column in cursor.description]
                rows.extend(dict(zip(names, row, strict=True)) for row in fetched)
        return rows

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._cursor.execute(self._translate(sql), params or {})
        names = [column[0] for column in self._cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def ddl(self, sql: str) -> None:
        """Run a schema statement verbatim (no parameters, no rewriting)."""
        self._cursor.execute(sql)


class Dialect(ABC):
    """A back end: connections, transactions, retries and error translation."""

    name: ClassVar[str]
    #: column type of an auto-incrementing integer primary key
    auto_id: ClassVar[str]
    #: column type of a byte string
    blob: ClassVar[str]
    #: table option after ``)`` for tables whose primary key is the natural lookup key:
    #: the rows live in the key's B-tree, so no separate key index is written
    without_rowid: ClassVar[str]

    @abstractmethod
    def run(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run ``work`` in one transaction and commit it (roll back if it raises).

        Raises:
            StoreError: the database failed; nothing of ``work`` was committed, except
                when the error says the commit outcome is unknown.
        """

    #: True when `run_now` can run work (see there); False: it always raises WouldBlock.
    runs_now: ClassVar[bool] = False

    def run_now(self, work: Callable[[Tx], T], *, write: bool) -> T:
        """`run`, but only if it can start without waiting for a lock.

        For callers on an event loop: a transaction that takes a few hundred
        microseconds of CPU is cheaper to run in place than to hand to a thread, as
        long as it never sleeps on a lock held elsewhere.

        Raises:
            WouldBlock: the lock is taken (or this back end does network I/O):
                nothing of ``work`` was committed (it may have begun and been rolled
                back, so it must be safe to run again); call `run` instead.
            StoreError: as `run`.
        """
        raise WouldBlock()

    @contextlib.contextmanager
    def try_exclusive(self, key: int) -> Iterator[bool]:
        """Hold the lock ``key`` for the block if it is free: yields True, else False.

        Never waits. This default is process-local (a thread lock per dialect);
        back ends shared between processes override it (PostgreSQL: a session-level
        advisory lock; SQLite: a file lock next to the database).
        """
        lock = self._exclusive_locks.setdefault(key, threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()

    @property
    def _exclusive_locks(self) -> dict[int, threading.Lock]:
        # Created lazily (the back ends' __init__ do not chain up), under one guard.
        with _EXCLUSIVE_GUARD:
            found: dict[int, threading.Lock] | None = getattr(self, "_exclusive_lock_table", None)
            if found is None:
                found = {}
                self._exclusive_lock_table = found
            return found

    @abstractmethod
    def lock_for_migration(self, tx: Tx) -> None:
        """Serialize concurrent migrators (several processes starting at once)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection; the store is unusable afterwards."""


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch: how every timestamp is stored (UTC)."""
    if moment.tzinfo is None:
        raise StoreInputError("timestamps must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def check_text(name: str, value: object, limit: int, *, empty: bool = False) -> str:
    """A str of at most ``limit`` characters, without NUL or control characters."""
    if not isinstance(value, str):
        raise StoreInputError(f"{name} must be a string")
    if len(value) > limit:
        raise StoreInputError(f"{name} is longer than {limit} characters")
    if not value and not empty:
        raise StoreInputError(f"{name} must not be empty")
    if _CONTROL.search(value) is not None:
        raise StoreInputError(f"{name} contains control characters")
    if not value.isascii() and _SURROGATE.search(value) is not None:
        raise StoreInputError(f"{name} is not Unicode text (a lone surrogate)")
    return value


def check_amount(name: str, value: object, *, zero: bool = False) -> int:
    # bool is an int subclass; True must not redeem one cent.
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreInputError(f"{name} must be an integer")
    if value < (0 if zero else 1) or value > MAX_AMOUNT:
        raise StoreInputError(f"{name} is out of range")
    return value


def dumps(value: Any) -> str:
    """Canonical JSON for stored documents (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def append_ledger(
    tx: Tx,
    *,
    at: int,
    event: LedgerEvent,
    subject: str | None = None,
    jti: str | None = None,
    redemption_id: str | None = None,
    kind: str | None = None,
    amount: int | None = None,
    unit: str | None = None,
    detail: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Append one audit row; ledger rows are only ever inserted (triggers forbid more).

    ``actor``: the name of the admin key whose request caused the row (None: no admin).
    """
    tx.execute(
        "INSERT INTO ledger"
        " (at, event, subject, jti, redemption_id, kind, amount, unit, detail, actor)"
        " VALUES (:at, :event, :subject, :jti, :redemption_id, :kind, :amount, :unit, :detail,"
        " :actor)",
        {
            "actor": actor,
            "at": at,
            "event": event.value,
            "subject": subject,
            "jti": jti,
            "redemption_id": redemption_id,
            "kind": kind,
            "amount": amount,
            "unit": unit,
            "detail": dumps(dict(detail or {})),
        },
    )
