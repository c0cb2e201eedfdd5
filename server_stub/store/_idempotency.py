"""Idempotency records (IETF draft-ietf-httpapi-idempotency-key-header).

A record is keyed by (scope, key): the scope is the caller (an API key id, a client
address), so two clients never collide. It stores the request fingerprint, a state
(``in_flight`` / ``done``), the owner's random claim token, and once done the response
status and body.

- `begin`: the first request claims the key (`New`). A later one with the same
  fingerprint gets the stored response (`Replay`) once done, or `InFlight` while the
  owner works; another fingerprint gets `Mismatch`.
- A claim older than the lock timeout (default 60 s) is presumed crashed: the next
  request takes it over (`New` with ``taken_over=True``). Completion is conditional on
  the claim token, so a slow original cannot overwrite its successor.
- Records expire ``ttl`` (default 24 h) after creation: an expired key starts afresh,
  and `purge` deletes expired rows.
"""

from __future__ import annotations

import secrets

from ._base import (
    MAX_BODY_BYTES,
    MAX_FINGERPRINT,
    MAX_IDEMPOTENCY_KEY,
    MAX_NAME,
    Tx,
    check_text,
    from_us,
)
from ._errors import IdempotencyKeyLost, StoreInputError
from ._models import IdempotencyOutcome, InFlight, Mismatch, New, Replay


def check_begin(scope: str, key: str, fingerprint: str) -> None:
    check_text("scope", scope, MAX_NAME)
    check_text("idempotency key", key, MAX_IDEMPOTENCY_KEY)
    check_text("fingerprint", fingerprint, MAX_FINGERPRINT)


def check_response(status: object, body: object) -> None:
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise StoreInputError("status must be an HTTP status code")
    if not isinstance(body, bytes):
        raise StoreInputError("body must be bytes")
    if len(body) > MAX_BODY_BYTES:
        raise StoreInputError(f"body is larger than {MAX_BODY_BYTES} bytes")


def begin(
    tx: Tx, scope: str, key: str, fingerprint: str, *, now: int, ttl: int, lock_timeout: int
) -> IdempotencyOutcome:
    owner = secrets.token_hex(16)
    claimed = tx.one(
        "INSERT INTO idempotency_keys"
        " (scope, key, fingerprint, state, owner, locked_at, created_at, expires_at)"
        " VALUES (:scope, :key, :fingerprint, 'in_flight', :owner, :now, :now, :expires)"
        " ON CONFLICT (scope, key) DO NOTHING RETURNING owner",
        {
            "scope": scope,
            "key": key,
            "fingerprint": fingerprint,
            "owner": owner,
            "now": now,
            "expires": now + ttl,
        },
    )
    if claimed is not None:
        return New(scope=scope, key=key, owner=owner)
    row = tx.one(
        "SELECT fingerprint, state, owner, locked_at, status, body, expires_at"
        " FROM idempotency_keys WHERE scope = :scope AND key = :key",
        {"scope": scope, "key": key},
    )
    if row is None:  # purged between our two statements (PostgreSQL): ask again later
        return InFlight(locked_until=from_us(now))
    params = {"scope": scope, "key": key, "old": row["owner"], "owner": owner, "now": now}
    if row["expires_at"] <= now:
        taken = tx.execute(
            "UPDATE idempotency_keys SET fingerprint = :fingerprint, state = 'in_flight',"
            " owner = :owner, locked_at = :now, status = NULL, body = NULL,"
            " created_at = :now, expires_at = :expires"
            " WHERE scope = :scope AND key = :key AND owner = :old AND expires_at <= :now",
            {**params, "fingerprint": fingerprint, "expires": now + ttl},
        )
        if taken:
            return New(scope=scope, key=key, owner=owner)
        return InFlight(locked_until=from_us(now + lock_timeout))
    if row["fingerprint"] != fingerprint:
        return Mismatch()
    if row["state"] == "done":
        return Replay(status=int(row["status"]), body=bytes(row["body"]))
    locked_until = int(row["locked_at"]) + lock_timeout
    if locked_until > now:
        return InFlight(locked_until=from_us(locked_until))
    taken = tx.execute(
        "UPDATE idempotency_keys SET owner = :owner, locked_at = :now"
        " WHERE scope = :scope AND key = :key AND owner = :old AND state = 'in_flight'",
        params,
    )
    if taken:
        return New(scope=scope, key=key, owner=owner, taken_over=True)
    return InFlight(locked_until=from_us(now + lock_timeout))


def lookup(tx: Tx, scope: str, key: str, fingerprint: str, *, now: int) -> Replay | None:
    """The stored response of a completed, unexpired record with this fingerprint, or None.

    Read-only: it claims nothing, so it can run before the request is authenticated.
    """
    row = tx.one(
        "SELECT fingerprint, state, status, body, expires_at"
        " FROM idempotency_keys WHERE scope = :scope AND key = :key",
        {"scope": scope, "key": key},
    )
    if (
        row is None
        or row["state"] != "done"
        or row["fingerprint"] != fingerprint
        or row["expires_at"] <= now
    ):
        return None
    return Replay(status=int(row["status"]), body=bytes(row["body"]))


def complete(tx: Tx, claim: New, status: int, body: bytes, *, now: int) -> None:
    """Store the response under the claim; raises IdempotencyKeyLost if it was taken over."""
    check_response(status, body)
    done = tx.execute(
        "UPDATE idempotency_keys SET state = 'done', status = :status, body = :body,"
        " locked_at = :now"
        " WHERE scope = :scope AND key = :key AND owner = :owner AND state = 'in_flight'",
        {
            "scope": claim.scope,
            "key": claim.key,
            "owner": claim.owner,
            "status": status,
            "body": body,
            "now": now,
        },
    )
    if not done:
        raise IdempotencyKeyLost()


def abandon(tx: Tx, claim: New) -> bool:
    """Forget an in-flight claim (the request failed before any effect worth replaying)."""
    return (
        tx.execute(
            "DELETE FROM idempotency_keys"
            " WHERE scope = :scope AND key = :key AND owner = :owner AND state = 'in_flight'",
            {"scope": claim.scope, "key": claim.key, "owner": claim.owner},
        )
        > 0
    )


def purge(tx: Tx, *, now: int) -> int:
    return tx.execute("DELETE FROM idempotency_keys WHERE expires_at <= :now", {"now": now})
