"""Detection transactions: episodes, incidents (with their ledger rows), automatic
compensations (row + issued tokens + ledger rows, one transaction), user profiles.

Exactly-once rests on keys, not on the caller: an incident's ``incident_opened`` and
``incident_closed`` ledger rows and its ``incident.opened`` / ``incident.closed``
outbox events are written by the transaction whose statement inserts the row or moves
it from ``open`` to ``closed``, so only the first of several replicas (or runs) writes
them; an automatic compensation is keyed (user_id, reason, ref) and its
tokens are recorded only by the transaction whose insert of that key succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ._admin import record_issued
from ._base import MAX_PAGE, Row, Tx, append_ledger, dumps, from_us, opt_from_us, to_us
from ._detection_models import (
    AutoCompensation,
    AutoDuplicate,
    AutoOutcome,
    AutoRecorded,
    CallObservation,
    EpisodeRecord,
    IncidentRecord,
    UserCompensation,
    UserProfile,
)
from ._models import IssuedToken, LedgerEvent
from ._outbox_events import incident_closed_event, incident_opened_event

_EPISODE_COLUMNS = (
    "id, user_id, endpoint, start_at, end_at, failures, rule, state, detected_at, updated_at"
)
_INCIDENT_COLUMNS = (
    "id, scope, start_at, end_at, severity, manual, state, affected_users, declared_at,"
    " close_requested_at, closed_at, updated_at"
)
_AUTO_COLUMNS = (
    "user_id, reason, ref, status, why, severity, kind, amount, unit, jti, extra_jti, detail,"
    " decided_at, created_at"
)


def _episode(row: Row) -> EpisodeRecord:
    return EpisodeRecord(
        id=row["id"],
        user_id=row["user_id"],
        endpoint=row["endpoint"],
        start=from_us(row["start_at"]),
        end=opt_from_us(row["end_at"]),
        failures=int(row["failures"]),
        rule=row["rule"],
        state=row["state"],
        detected_at=from_us(row["detected_at"]),
    )


def _incident(row: Row) -> IncidentRecord:
    return IncidentRecord(
        id=row["id"],
        scope=tuple(json.loads(row["scope"])),
        start=from_us(row["start_at"]),
        end=opt_from_us(row["end_at"]),
        severity=row["severity"],
        manual=bool(row["manual"]),
        state=row["state"],
        affected_users=None if row["affected_users"] is None else int(row["affected_users"]),
        declared_at=from_us(row["declared_at"]),
        close_requested_at=opt_from_us(row["close_requested_at"]),
        closed_at=opt_from_us(row["closed_at"]),
    )


def _auto(row: Row) -> AutoCompensation:
    return AutoCompensation(
        user_id=row["user_id"],
        reason=row["reason"],
        ref=row["ref"],
        status=row["status"],
        why=row["why"],
        severity=row["severity"],
        kind=row["kind"],
        amount=int(row["amount"]),
        unit=row["unit"],
        jti=row["jti"],
        extra_jti=row["extra_jti"],
        detail=json.loads(row["detail"]),
        decided_at=from_us(row["decided_at"]),
        created_at=from_us(row["created_at"]),
    )


# -- the detector's input ------------------------------------------------------------


def call_observations(
    tx: Tx, *, since: int, until: int, after: tuple[int, str] | None, limit: int
) -> list[CallObservation]:
    """``call`` events with ``since <= ts < until`` in (ts, event_id) order, after a cursor."""
    params: dict[str, Any] = {"since": since, "until": until, "limit": limit}
    where = "kind = 'call' AND ts >= :since AND ts < :until"
    if after is not None:
        where += " AND (ts > :ats OR (ts = :ats AND event_id > :aid))"
        params.update(ats=after[0], aid=after[1])
    rows = tx.all(
        "SELECT ts, event_id, user_id, endpoint, outcome, category, status, count, segment"  # noqa: S608
        f" FROM events WHERE {where} ORDER BY ts, event_id LIMIT :limit",
        params,
    )
    return [
        CallObservation(
            ts=from_us(row["ts"]),
            event_id=row["event_id"],
            user_id=row["user_id"],
            endpoint=row["endpoint"],
            outcome=row["outcome"],
            category=row["category"],
            status=None if row["status"] is None else int(row["status"]),
            count=int(row["count"]),
            segment=row["segment"],
        )
        for row in rows
    ]


def replay_anchor(tx: Tx, *, start: int, floor: int) -> int:
    """The earliest time a replay must start at so that it cuts through no recorded
    episode or incident: the fixpoint of "the earliest start of anything still running
    (or ended) at or after the anchor", never before ``floor``."""
    anchor = start
    while True:
        row = tx.one(
            "SELECT MIN(s) AS s FROM (SELECT MIN(start_at) AS s FROM episodes"
            " WHERE start_at < :a AND (end_at IS NULL OR end_at >= :a)"
            " UNION ALL SELECT MIN(start_at) AS s FROM incidents"
            " WHERE start_at < :a AND (end_at IS NULL OR end_at >= :a OR state = 'open')) AS t",
            {"a": anchor},
        )
        earlier = None if row is None or row["s"] is None else int(row["s"])
        if earlier is None or earlier >= anchor:
            return anchor
        if earlier <= floor:
            return floor
        anchor = earlier


def recent_issued(tx: Tx, *, since: int) -> list[tuple[str, int]]:
    """(user, latest decision time) of the compensations issued since ``since``."""
    rows = tx.all(
        "SELECT user_id, MAX(decided_at) AS at FROM auto_compensations"
        " WHERE status = 'issued' AND decided_at >= :since GROUP BY user_id",
        {"since": since},
    )
    return [(row["user_id"], int(row["at"])) for row in rows]


def known_keys(tx: Tx, *, since: int) -> set[tuple[str, str, str]]:
    rows = tx.all(
        "SELECT user_id, reason, ref FROM auto_compensations WHERE decided_at >= :since",
        {"since": since},
    )
    return {(row["user_id"], row["reason"], row["ref"]) for row in rows}


def profiles(tx: Tx) -> dict[str, str]:
    """user -> segment, for the users with one."""
    rows = tx.all("SELECT user_id, segment FROM user_profiles WHERE segment IS NOT NULL")
    return {row["user_id"]: row["segment"] for row in rows}


def replay_incidents(tx: Tx, *, since: int) -> list[IncidentRecord]:
    """What the replay must re-apply: manual incidents still open or closed since
    ``since``, and automatic ones an operator asked to close."""
    rows = tx.all(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE"  # noqa: S608
        " (manual = 1 AND (state = 'open' OR closed_at >= :since))"
        " OR (manual = 0 AND state = 'open' AND close_requested_at IS NOT NULL)"
        " ORDER BY declared_at, id",
        {"since": since},
    )
    return [_incident(row) for row in rows]


# -- recording the detector's output -------------------------------------------------


def upsert_episodes(tx: Tx, episodes: Sequence[EpisodeRecord], *, now: int) -> None:
    """Insert or refresh episodes (the replay re-derives them; the first detection
    time is kept)."""
    for episode in episodes:
        tx.execute(
            f"INSERT INTO episodes ({_EPISODE_COLUMNS}) VALUES (:id, :user_id, :endpoint,"  # noqa: S608
            " :start_at, :end_at, :failures, :rule, :state, :detected_at, :now)"
            " ON CONFLICT (id) DO UPDATE SET end_at = excluded.end_at,"
            " failures = excluded.failures, state = excluded.state,"
            " updated_at = excluded.updated_at",
            {
                "id": episode.id,
                "user_id": episode.user_id,
                "endpoint": episode.endpoint,
                "start_at": to_us(episode.start),
                "end_at": None if episode.end is None else to_us(episode.end),
                "failures": episode.failures,
                "rule": episode.rule,
                "state": episode.state,
                "detected_at": to_us(episode.detected_at),
                "now": now,
            },
        )


def open_incident(tx: Tx, incident: IncidentRecord, *, now: int) -> bool:
    """Insert an incident, its ``incident_opened`` ledger row and its
    ``incident.opened`` outbox event; False (and nothing written) if it exists."""
    inserted = tx.one(
        f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES (:id, :scope, :start_at,"  # noqa: S608
        " :end_at, NULL, :manual, 'open', NULL, :declared_at, NULL, NULL, :now)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        {
            "id": incident.id,
            "scope": dumps(list(incident.scope)),
            "start_at": to_us(incident.start),
            "end_at": None if incident.end is None else to_us(incident.end),
            "manual": int(incident.manual),
            "declared_at": to_us(incident.declared_at),
            "now": now,
        },
    )
    if inserted is None:
        return False
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.INCIDENT_OPENED,
        detail={
            "incident": incident.id,
            "scope": list(incident.scope),
            "start": to_us(incident.start),
            "manual": incident.manual,
        },
    )
    incident_opened_event(
        tx,
        incident.id,
        scope=incident.scope,
        manual=incident.manual,
        start=to_us(incident.start),
        end=None if incident.end is None else to_us(incident.end),
        now=now,
    )
    return True


def close_incident(
    tx: Tx,
    incident_id: str,
    *,
    end: int,
    severity: str,
    affected_users: int,
    closed_at: int,
    now: int,
) -> bool:
    """Mark an open incident closed with its ``incident_closed`` ledger row and its
    ``incident.closed`` outbox event, once."""
    changed = tx.one(
        "UPDATE incidents SET state = 'closed', end_at = :end, severity = :severity,"
        " affected_users = :affected, closed_at = :closed_at, updated_at = :now"
        " WHERE id = :id AND state = 'open' RETURNING scope, start_at, manual",
        {
            "id": incident_id,
            "end": end,
            "severity": severity,
            "affected": affected_users,
            "closed_at": closed_at,
            "now": now,
        },
    )
    if changed is None:
        return False
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.INCIDENT_CLOSED,
        detail={
            "incident": incident_id,
            "end": end,
            "severity": severity,
            "affected_users": affected_users,
        },
    )
    incident_closed_event(
        tx,
        incident_id,
        scope=json.loads(changed["scope"]),
        manual=bool(changed["manual"]),
        start=int(changed["start_at"]),
        end=end,
        severity=severity,
        affected_users=affected_users,
        now=now,
    )
    return True


def replace_degraded(tx: Tx, degraded: Iterable[tuple[str, int]], *, now: int) -> None:
    tx.execute("DELETE FROM degraded_endpoints")
    for endpoint, since in degraded:
        tx.execute(
            "INSERT INTO degraded_endpoints (endpoint, since, updated_at)"
            " VALUES (:endpoint, :since, :now)",
            {"endpoint": endpoint, "since": since, "now": now},
        )


def degraded(tx: Tx) -> list[tuple[str, int, int]]:
    rows = tx.all("SELECT endpoint, since, updated_at FROM degraded_endpoints ORDER BY endpoint")
    return [(row["endpoint"], int(row["since"]), int(row["updated_at"])) for row in rows]


def _budget_left(tx: Tx, token: IssuedToken, *, now: int) -> tuple[int | None, str]:
    """What the budget of the token's (kind, campaign) (else (kind, ``*``)) can still
    cover: its remaining amount less the tokens already issued against it and still
    redeemable. None: no budget applies (unlimited)."""
    row = tx.one(
        "SELECT campaign, unit, remaining FROM budgets WHERE kind = :kind"
        " AND campaign IN (:campaign, '*') ORDER BY CASE WHEN campaign = '*' THEN 1 ELSE 0 END"
        " LIMIT 1",
        {"kind": token.kind, "campaign": token.campaign},
    )
    if row is None:
        return None, ""
    name = f"{token.kind}/{row['campaign']}"
    if row["unit"] != token.unit:
        return 0, name
    params: dict[str, Any] = {"kind": token.kind, "now": now}
    campaign = ""
    if row["campaign"] != "*":
        campaign = " AND i.campaign = :campaign"
        params["campaign"] = token.campaign
    outstanding = tx.one(
        "SELECT COALESCE(SUM(i.amount), 0) AS n FROM issued_tokens AS i"  # noqa: S608
        f" WHERE i.kind = :kind{campaign} AND i.expires_at > :now"
        " AND NOT EXISTS (SELECT 1 FROM redemptions AS r WHERE r.jti = i.jti)",
        params,
    )
    spent = int(outstanding["n"]) if outstanding else 0
    return int(row["remaining"]) - spent, name


def record_auto(
    tx: Tx, compensation: AutoCompensation, tokens: Sequence[IssuedToken], *, now: int
) -> AutoOutcome:
    """Record one decision under its key; with ``tokens`` (status ``issued``), record
    them and their ledger rows too, unless a budget cannot cover them: then the row
    says ``refused`` and ``why`` names the budget. All in the caller's transaction."""
    c = compensation
    exists = tx.one(
        "SELECT 1 AS found FROM auto_compensations"
        " WHERE user_id = :user_id AND reason = :reason AND ref = :ref",
        {"user_id": c.user_id, "reason": c.reason, "ref": c.ref},
    )
    if exists is not None:
        return AutoDuplicate(user_id=c.user_id, reason=c.reason, ref=c.ref)
    status, why = c.status, c.why
    jti = extra = None
    if status == "issued":
        for token in tokens:
            left, name = _budget_left(tx, token, now=now)
            if left is not None and left < token.amount:
                status, why = "refused", f"budget {name}"
                break
        if status == "issued":
            ledger = {"reason": c.reason, "ref": c.ref, "automatic": True}
            for token in tokens:
                record_issued(tx, token, now=now, detail=ledger)
            jti = tokens[0].jti if tokens else None
            extra = tokens[1].jti if len(tokens) > 1 else None
    recorded = AutoCompensation(
        user_id=c.user_id,
        reason=c.reason,
        ref=c.ref,
        status=status,
        why=why,
        severity=c.severity,
        kind=c.kind,
        amount=c.amount,
        unit=c.unit,
        decided_at=c.decided_at,
        jti=jti,
        extra_jti=extra,
        detail=c.detail,
        created_at=from_us(now),
    )
    tx.execute(
        f"INSERT INTO auto_compensations ({_AUTO_COLUMNS}) VALUES (:user_id, :reason, :ref,"  # noqa: S608
        " :status, :why, :severity, :kind, :amount, :unit, :jti, :extra_jti, :detail,"
        " :decided_at, :now)",
        {
            "user_id": c.user_id,
            "reason": c.reason,
            "ref": c.ref,
            "status": status,
            "why": why,
            "severity": c.severity,
            "kind": c.kind,
            "amount": c.amount,
            "unit": c.unit,
            "jti": jti,
            "extra_jti": extra,
            "detail": dumps(dict(c.detail)),
            "decided_at": to_us(c.decided_at),
            "now": now,
        },
    )
    return AutoRecorded(compensation=recorded)


# -- admin reads and writes ----------------------------------------------------------


def _page(
    tx: Tx,
    columns: str,
    table: str,
    filters: Sequence[tuple[str, str, object]],
    *,
    order: str,
    limit: int,
) -> list[Row]:
    """A page of ``table``: each (column, operator, value) filter whose value is not
    None narrows it (``column operator :column``); the names are this module's own."""
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": min(limit, MAX_PAGE)}
    for column, operator, value in filters:
        if value is not None:
            where.append(f"{column} {operator} :{column}")
            params[column] = value
    return tx.all(
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608
        f" ORDER BY {order} LIMIT :limit",
        params,
    )


def list_episodes(
    tx: Tx, *, user_id: str | None, endpoint: str | None, since: int | None, limit: int
) -> list[EpisodeRecord]:
    filters = [("user_id", "=", user_id), ("endpoint", "=", endpoint), ("start_at", ">=", since)]
    rows = _page(tx, _EPISODE_COLUMNS, "episodes", filters, order="start_at DESC, id", limit=limit)
    return [_episode(row) for row in rows]


def list_incidents(
    tx: Tx, *, state: str | None, since: int | None, limit: int
) -> list[IncidentRecord]:
    filters = [("state", "=", state), ("start_at", ">=", since)]
    rows = _page(
        tx, _INCIDENT_COLUMNS, "incidents", filters, order="start_at DESC, id", limit=limit
    )
    return [_incident(row) for row in rows]


def overlapping_incidents(tx: Tx, *, since: int, until: int, limit: int) -> list[IncidentRecord]:
    rows = tx.all(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents"  # noqa: S608
        " WHERE start_at < :until AND (end_at IS NULL OR end_at > :since)"
        " ORDER BY start_at, id LIMIT :limit",
        {"since": since, "until": until, "limit": min(limit, MAX_PAGE)},
    )
    return [_incident(row) for row in rows]


def get_incident(tx: Tx, incident_id: str) -> IncidentRecord | None:
    row = tx.one(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = :id",  # noqa: S608
        {"id": incident_id},
    )
    return None if row is None else _incident(row)


def request_close(tx: Tx, incident_id: str, *, at: int, now: int) -> IncidentRecord | None:
    """Ask the detector to close an open incident at ``at`` (a manual one ends there,
    unless it declared an earlier end). None: no such incident."""
    tx.execute(
        "UPDATE incidents SET close_requested_at = :at, updated_at = :now,"
        " end_at = CASE WHEN manual = 1 AND (end_at IS NULL OR end_at > :at) THEN :at"
        " ELSE end_at END WHERE id = :id AND state = 'open' AND close_requested_at IS NULL",
        {"id": incident_id, "at": at, "now": now},
    )
    return get_incident(tx, incident_id)


def list_auto(
    tx: Tx, *, status: str | None, user_id: str | None, limit: int
) -> list[AutoCompensation]:
    filters = [("status", "=", status), ("user_id", "=", user_id)]
    rows = _page(
        tx, _AUTO_COLUMNS, "auto_compensations", filters,
        order="decided_at DESC, user_id, ref", limit=limit,
    )  # fmt: skip
    return [_auto(row) for row in rows]


def set_profile(tx: Tx, profile: UserProfile) -> None:
    tx.execute(
        "INSERT INTO user_profiles (user_id, segment, value_tier, updated_at)"
        " VALUES (:user_id, :segment, :tier, :at) ON CONFLICT (user_id) DO UPDATE SET"
        " segment = excluded.segment, value_tier = excluded.value_tier,"
        " updated_at = excluded.updated_at",
        {
            "user_id": profile.user_id,
            "segment": profile.segment,
            "tier": profile.value_tier,
            "at": to_us(profile.updated_at),
        },
    )


def user_compensations(tx: Tx, user_id: str) -> list[UserCompensation]:
    """Every token issued to the user, newest first, with its automatic reason and ref."""
    rows = tx.all(
        "SELECT i.jti, i.kind, i.amount, i.unit, i.campaign, i.alert_id, i.created_at,"
        " i.expires_at, a.reason, a.ref, a.extra_jti,"
        " EXISTS (SELECT 1 FROM redemptions AS r WHERE r.jti = i.jti) AS redeemed"
        " FROM issued_tokens AS i LEFT JOIN auto_compensations AS a"
        " ON a.user_id = i.subject AND (a.jti = i.jti OR a.extra_jti = i.jti)"
        " WHERE i.subject = :user_id ORDER BY i.created_at DESC, i.jti LIMIT :limit",
        {"user_id": user_id, "limit": MAX_PAGE},
    )
    return [
        UserCompensation(
            jti=row["jti"],
            reason=row["reason"] or "manual",
            ref=row["ref"],
            kind=row["kind"],
            amount=int(row["amount"]),
            unit=row["unit"],
            campaign=row["campaign"],
            alert_id=row["alert_id"],
            issued_at=opt_from_us(row["created_at"]),
            expires_at=from_us(row["expires_at"]),
            redeemed=bool(row["redeemed"]),
        )
        for row in rows
    ]
