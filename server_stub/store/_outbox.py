"""Outbox transactions: claim due events under a lease, record results, list, requeue, prune.

Claiming: due means ``status IN (pending, delivering) AND next_attempt_at <= now``.
A claim sets ``status = delivering``, ``attempts + 1``, ``leased_by`` and moves
``next_attempt_at`` to the lease's end, so an event whose dispatcher died is simply
due again when the lease runs out (at least once). On PostgreSQL the candidate rows
are locked with ``FOR UPDATE SKIP LOCKED``: replicas claim disjoint batches without
waiting on each other. On SQLite the write transaction (``BEGIN IMMEDIATE``) already
serializes claimers, and the lease is what keeps a second one off.

Results are applied only by the lease holder (``leased_by``): a dispatcher whose lease
expired and was taken over records its acknowledgements (they happened) but does not
change the event's status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from ._base import MAX_PAGE, Row, Tx, from_us, opt_from_us, to_us
from ._outbox_models import (
    ClaimedEvent,
    DeliveryResult,
    EventNotFound,
    NotFailed,
    OutboxEvent,
    OutboxStatus,
    Requeued,
    RequeueOutcome,
    SinkHealth,
    WebhookEndpoint,
)

_EVENT_COLUMNS = (
    "id, type, payload, created_at, status, attempts, next_attempt_at, last_error, delivered_at"
)
MAX_ERROR = 500


def claim(
    tx: Tx, *, now: int, lease_until: int, owner: str, limit: int, skip_locked: bool
) -> list[ClaimedEvent]:
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    rows = tx.all(
        "UPDATE outbox SET status = 'delivering', attempts = attempts + 1,"  # noqa: S608
        " lease_until = :until, next_attempt_at = :until, leased_by = :owner"
        " WHERE id IN (SELECT id FROM outbox WHERE status IN ('pending', 'delivering')"
        f" AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT :limit{lock})"
        " RETURNING id, type, payload, attempts",
        {"until": lease_until, "owner": owner, "now": now, "limit": limit},
    )
    done = _delivered_to(tx, [row["id"] for row in rows])
    return sorted(
        (
            ClaimedEvent(
                id=row["id"],
                type=row["type"],
                body=str(row["payload"]).encode("utf-8"),
                attempts=int(row["attempts"]),
                lease_until=from_us(lease_until),
                owner=owner,
                delivered_to=frozenset(done.get(row["id"], ())),
            )
            for row in rows
        ),
        key=lambda event: event.id,
    )


def settle_unrouted(tx: Tx, *, now: int, limit: int, skip_locked: bool) -> int:
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    return tx.execute(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1,"  # noqa: S608
        " delivered_at = :now, last_error = NULL, lease_until = NULL, leased_by = NULL"
        " WHERE id IN (SELECT id FROM outbox WHERE status IN ('pending', 'delivering')"
        f" AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT :limit{lock})",
        {"now": now, "limit": limit},
    )


def _delivered_to(tx: Tx, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    names = {f"id{index}": value for index, value in enumerate(ids)}
    rows = tx.all(
        "SELECT outbox_id, sink FROM outbox_deliveries"  # noqa: S608
        f" WHERE outbox_id IN ({', '.join(':' + name for name in names)}) ORDER BY sink",
        names,
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["outbox_id"], []).append(row["sink"])
    return found


def finish(tx: Tx, results: Sequence[DeliveryResult], *, now: int) -> int:
    """Apply delivery results; returns how many events the caller still held the lease of.

    The common case, every sink has it, is one statement per lease holder for the whole
    batch (a round of 50 events was 50 round trips on PostgreSQL); a retry or a dead
    letter, each with its own time and error, is one statement per event.
    """
    acknowledged = [
        {"id": result.event_id, "sink": sink, "now": now}
        for result in results
        for sink in result.delivered
    ]
    tx.executemany(
        "INSERT INTO outbox_deliveries (outbox_id, sink, delivered_at)"
        " VALUES (:id, :sink, :now) ON CONFLICT (outbox_id, sink) DO NOTHING",
        acknowledged,
    )
    held = 0
    done: dict[str, list[str]] = {}
    for result in results:
        if result.error is None:
            done.setdefault(result.owner, []).append(result.event_id)
            continue
        params: dict[str, Any] = {
            "id": result.event_id,
            "owner": result.owner,
            "error": result.error[:MAX_ERROR],
        }
        if result.retry_at is None:
            sql = "UPDATE outbox SET status = 'failed', last_error = :error, lease_until = NULL"
        else:
            sql = (
                "UPDATE outbox SET status = 'pending', last_error = :error, lease_until = NULL,"
                " next_attempt_at = :at"
            )
            params["at"] = to_us(result.retry_at)
        held += tx.execute(
            sql + " WHERE id = :id AND leased_by = :owner AND status = 'delivering'", params
        )
    for owner, ids in done.items():
        for offset in range(0, len(ids), MAX_PAGE):
            names = {
                f"id{index}": value for index, value in enumerate(ids[offset : offset + MAX_PAGE])
            }
            held += tx.execute(
                "UPDATE outbox SET status = 'delivered', delivered_at = :now, last_error = NULL,"  # noqa: S608
                " lease_until = NULL WHERE leased_by = :owner AND status = 'delivering'"
                f" AND id IN ({', '.join(':' + name for name in names)})",
                {**names, "owner": owner, "now": now},
            )
    return held


def _event(row: Row, delivered_to: Sequence[str]) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        created_at=from_us(row["created_at"]),
        status=OutboxStatus(row["status"]),
        attempts=int(row["attempts"]),
        next_attempt_at=from_us(row["next_attempt_at"]),
        last_error=row["last_error"],
        delivered_at=opt_from_us(row["delivered_at"]),
        delivered_to=tuple(delivered_to),
    )


def events(
    tx: Tx, *, status: OutboxStatus | None, after: str | None, limit: int
) -> list[OutboxEvent]:
    where = ["id > :after"]
    params: dict[str, Any] = {"after": after or "", "limit": min(limit, MAX_PAGE)}
    if status is not None:
        where.append("status = :status")
        params["status"] = status.value
    rows = tx.all(
        f"SELECT {_EVENT_COLUMNS} FROM outbox WHERE {' AND '.join(where)}"  # noqa: S608
        " ORDER BY id LIMIT :limit",
        params,
    )
    done = _delivered_to(tx, [row["id"] for row in rows])
    return [_event(row, done.get(row["id"], ())) for row in rows]


def event(tx: Tx, event_id: str) -> OutboxEvent | None:
    row = tx.one(f"SELECT {_EVENT_COLUMNS} FROM outbox WHERE id = :id", {"id": event_id})  # noqa: S608
    return None if row is None else _event(row, _delivered_to(tx, [event_id]).get(event_id, ()))


def requeue(tx: Tx, event_id: str, *, now: int) -> RequeueOutcome:
    changed = tx.execute(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = :now,"
        " lease_until = NULL, leased_by = NULL WHERE id = :id AND status = 'failed'",
        {"id": event_id, "now": now},
    )
    if changed:
        return Requeued(event_id)
    row = tx.one("SELECT status FROM outbox WHERE id = :id", {"id": event_id})
    if row is None:
        return EventNotFound(event_id)
    return NotFailed(event_id, OutboxStatus(row["status"]))


def prune_delivered_chunk(tx: Tx, *, cutoff: int, chunk: int) -> int:
    """Delete at most ``chunk`` events delivered before ``cutoff``, with their deliveries.

    Only ``delivered`` rows: pending and delivering ones are still owed to a receiver,
    and dead letters (``failed``) are kept until someone requeues them.
    """
    rows = tx.all(
        "SELECT id FROM outbox WHERE status = 'delivered' AND delivered_at < :cutoff"
        " ORDER BY id LIMIT :chunk",
        {"cutoff": cutoff, "chunk": chunk},
    )
    if not rows:
        return 0
    names = {f"id{index}": row["id"] for index, row in enumerate(rows)}
    listed = ", ".join(":" + name for name in names)
    tx.execute(f"DELETE FROM outbox_deliveries WHERE outbox_id IN ({listed})", names)  # noqa: S608
    return tx.execute(
        f"DELETE FROM outbox WHERE id IN ({listed}) AND status = 'delivered'",  # noqa: S608
        names,
    )


def requeue_failed(tx: Tx, *, now: int) -> int:
    """Put every dead letter back (attempts reset, due now); returns how many."""
    return tx.execute(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = :now,"
        " lease_until = NULL, leased_by = NULL WHERE status = 'failed'",
        {"now": now},
    )


def grant_acknowledged(tx: Tx, jti: str) -> bool:
    """True once some sink acknowledged the ``compensation.redeemed`` event of ``jti``."""
    row = tx.one(
        "SELECT 1 AS found FROM outbox AS o JOIN outbox_deliveries AS d ON d.outbox_id = o.id"
        " WHERE o.jti = :jti AND o.type = 'compensation.redeemed' LIMIT 1",
        {"jti": jti},
    )
    return row is not None


# -- webhook endpoints and sink health ---------------------------------------------------


def _health(row: Row | None, sink: str) -> SinkHealth | None:
    if row is None:
        return None
    return SinkHealth(
        sink=sink,
        failing_since=opt_from_us(row["failing_since"]),
        disabled_at=opt_from_us(row["disabled_at"]),
        disabled_reason=row["disabled_reason"],
    )


def add_endpoint(
    tx: Tx, endpoint_id: str, url: str, secrets: Sequence[str], types: Sequence[str], *, now: int
) -> WebhookEndpoint:
    tx.execute(
        "INSERT INTO webhook_endpoints (id, url, secrets, event_types, created_at)"
        " VALUES (:id, :url, :secrets, :types, :now)",
        {
            "id": endpoint_id,
            "url": url,
            "secrets": json.dumps(list(secrets)),
            "types": json.dumps(list(types)),
            "now": now,
        },
    )
    return WebhookEndpoint(endpoint_id, url, tuple(secrets), tuple(types), from_us(now))


def endpoints(tx: Tx, only: str | None = None) -> list[WebhookEndpoint]:
    """Every registered endpoint with its health, or only the one with id ``only``."""
    where = "" if only is None else " WHERE e.id = :only"
    rows = tx.all(
        "SELECT e.id, e.url, e.secrets, e.event_types, e.created_at, h.failing_since,"  # noqa: S608
        " h.disabled_at, h.disabled_reason, h.sink FROM webhook_endpoints AS e"
        f" LEFT JOIN sink_health AS h ON h.sink = e.id{where} ORDER BY e.id",
        {} if only is None else {"only": only},
    )
    return [
        WebhookEndpoint(
            id=row["id"],
            url=row["url"],
            secrets=tuple(json.loads(row["secrets"])),
            event_types=tuple(json.loads(row["event_types"])),
            created_at=from_us(row["created_at"]),
            health=_health(row if row["sink"] is not None else None, row["id"]),
        )
        for row in rows
    ]


def remove_endpoint(tx: Tx, endpoint_id: str) -> bool:
    tx.execute("DELETE FROM sink_health WHERE sink = :id", {"id": endpoint_id})
    return tx.execute("DELETE FROM webhook_endpoints WHERE id = :id", {"id": endpoint_id}) > 0


def sink_health(tx: Tx) -> dict[str, SinkHealth]:
    rows = tx.all("SELECT sink, failing_since, disabled_at, disabled_reason FROM sink_health")
    found: dict[str, SinkHealth] = {}
    for row in rows:
        health = _health(row, row["sink"])
        assert health is not None
        found[row["sink"]] = health
    return found


def sink_failed(tx: Tx, sink: str, *, now: int) -> SinkHealth:
    """Start (or continue) a failure streak; returns the sink's health after it."""
    tx.execute(
        "INSERT INTO sink_health (sink, failing_since) VALUES (:sink, :now)"
        " ON CONFLICT (sink) DO UPDATE SET failing_since = :now"
        " WHERE sink_health.failing_since IS NULL",
        {"sink": sink, "now": now},
    )
    row = tx.one(
        "SELECT failing_since, disabled_at, disabled_reason FROM sink_health WHERE sink = :sink",
        {"sink": sink},
    )
    health = _health(row, sink)
    assert health is not None
    return health


def sink_ok(tx: Tx, sink: str) -> None:
    """A success ends the streak (Svix: the clock restarts)."""
    tx.execute(
        "UPDATE sink_health SET failing_since = NULL WHERE sink = :sink"
        " AND failing_since IS NOT NULL",
        {"sink": sink},
    )


def disable_sink(tx: Tx, sink: str, reason: str, *, now: int) -> None:
    tx.execute(
        "INSERT INTO sink_health (sink, disabled_at, disabled_reason) VALUES (:sink, :now, :why)"
        " ON CONFLICT (sink) DO UPDATE SET disabled_at = :now, disabled_reason = :why",
        {"sink": sink, "now": now, "why": reason[:MAX_ERROR]},
    )


def enable_sink(tx: Tx, sink: str) -> bool:
    """Forget a sink's failure streak and disabled state; False if it had none."""
    return tx.execute("DELETE FROM sink_health WHERE sink = :sink", {"sink": sink}) > 0


def enable_endpoint(tx: Tx, endpoint_id: str) -> WebhookEndpoint | None:
    """Re-enable a registered endpoint (streak reset too); None if there is no such endpoint."""
    found = endpoints(tx, endpoint_id)
    if not found:
        return None
    enable_sink(tx, endpoint_id)
    return attrs.evolve(found[0], health=None)


# -- reminders ---------------------------------------------------------------------------


def mark_seen(tx: Tx, jti: str, subject: str, *, now: int) -> bool:
    """Record that the reminder of ``jti`` was shown; False if it is not ``subject``'s."""
    owned = tx.one(
        "SELECT 1 AS found FROM issued_tokens WHERE jti = :jti AND subject = :subject",
        {"jti": jti, "subject": subject},
    )
    if owned is None:
        return False
    tx.execute(
        "INSERT INTO reminders_seen (jti, subject, seen_at) VALUES (:jti, :subject, :now)"
        " ON CONFLICT (jti) DO NOTHING",
        {"jti": jti, "subject": subject, "now": now},
    )
    return True


def seen(tx: Tx, subject: str) -> set[str]:
    rows = tx.all("SELECT jti FROM reminders_seen WHERE subject = :subject", {"subject": subject})
    return {row["jti"] for row in rows}
