"""Errors of the store: infrastructure failures and bad arguments.

Business results (already redeemed, budget exhausted, ...) are *not* errors: they are
typed outcome values (see `_models`). Exceptions here mean the store could not answer.
No sqlite3 or psycopg exception ever leaves the store; it is wrapped in `StoreError`
(chained with ``from`` for the server's logs, never with credentials in the message).
"""

from __future__ import annotations


class StoreError(Exception):
    """The database could not complete the operation; nothing of it was committed.

    Attributes:
        retryable: True when retrying the same call may succeed (lock timeout,
            serialization failure that outlived the store's own retries, a pool
            timeout). False for broken schema, bad connection settings, or a commit
            whose outcome is unknown.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class IdempotencyKeyLost(StoreError):
    """Our in-flight idempotency claim was taken over after its lock timeout.

    The whole redemption transaction was rolled back; the key belongs to the request
    that took it over. Retrying with the same key replays (or waits for) that request.
    """

    def __init__(self) -> None:
        super().__init__("idempotency key was taken over after its lock timeout", retryable=True)


class WouldBlock(StoreError):
    """``wait=False`` and the write lock is not free right now; nothing was attempted.

    Only the SQLite back end runs calls without waiting (`Store.can_run_now`); the
    caller retries the same call with ``wait=True`` (on a worker thread).
    """

    def __init__(self) -> None:
        super().__init__("the write lock is taken", retryable=True)


class StoreInputError(ValueError):
    """An argument was out of range or too large (checked before touching the database)."""


class BudgetMoved(StoreError):
    """A redemption batch's budget charge no longer fits: a concurrent batch spent it.

    Internal to the PostgreSQL batch (`_pg_batch`), which then runs the batch again
    under the budget rows' locks; it escapes only if that fails too.
    """

    def __init__(self) -> None:
        super().__init__("a budget changed while a redemption batch counted on it", retryable=True)
