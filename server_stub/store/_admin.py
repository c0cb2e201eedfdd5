"""Admin transactions: budgets, code pools, caps, issued tokens, ledger queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ._base import MAX_PAGE, Row, Tx, append_ledger, from_us, to_us
from ._errors import StoreInputError
from ._models import (
    Budget,
    CodeLoad,
    CodePool,
    Compensations,
    IssuedToken,
    LedgerEntry,
    LedgerEvent,
    LedgerPage,
    UserCap,
)
from ._outbox_events import issued_event
from ._rows import ISSUED_COLUMNS, REDEMPTION_COLUMNS, issued, redemption, texts_json

_BUDGET_COLUMNS = "kind, campaign, unit, total, remaining"


def _budget(row: Row) -> Budget:
    return Budget(
        kind=row["kind"],
        campaign=row["campaign"],
        unit=row["unit"],
        total=int(row["total"]),
        remaining=int(row["remaining"]),
    )


def set_budget(
    tx: Tx, kind: str, campaign: str, unit: str, total: int, *, now: int, actor: str | None = None
) -> Budget:
    """Create or resize a budget; what was already spent stays spent.

    ``remaining`` becomes ``total - spent`` (never below 0), where spent is the old
    ``total - remaining``. The unit of an existing budget cannot change.
    """
    row = tx.one(
        "INSERT INTO budgets (kind, campaign, unit, total, remaining, updated_at)"  # noqa: S608
        " VALUES (:kind, :campaign, :unit, :total, :total, :now)"
        " ON CONFLICT (kind, campaign) DO UPDATE SET"
        " remaining = CASE WHEN :total - (budgets.total - budgets.remaining) < 0 THEN 0"
        " ELSE :total - (budgets.total - budgets.remaining) END,"
        " total = :total, updated_at = :now WHERE budgets.unit = :unit"
        f" RETURNING {_BUDGET_COLUMNS}",
        {"kind": kind, "campaign": campaign, "unit": unit, "total": total, "now": now},
    )
    if row is None:
        raise StoreInputError("a budget's unit cannot change; create another campaign")
    budget = _budget(row)
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.BUDGET_SET,
        kind=kind,
        amount=total,
        unit=unit,
        detail={"campaign": campaign, "remaining": budget.remaining},
        actor=actor,
    )
    return budget


def budgets(tx: Tx) -> list[Budget]:
    return [
        _budget(row)
        for row in tx.all(f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY kind, campaign")  # noqa: S608
    ]


def load_codes(
    tx: Tx, pool: str, codes: Sequence[str], *, now: int, actor: str | None = None
) -> CodeLoad:
    """Add codes to a pool; codes already known (in any pool) are skipped."""
    tx.execute(
        "INSERT INTO code_pools (pool, total, remaining) VALUES (:pool, 0, 0)"
        " ON CONFLICT (pool) DO NOTHING",
        {"pool": pool},
    )
    # Lock the pool row first, as redeemers do, so the counts below are exact.
    tx.execute("UPDATE code_pools SET total = total WHERE pool = :pool", {"pool": pool})
    before = _count_free(tx, pool)
    for code in dict.fromkeys(codes):
        tx.execute(
            "INSERT INTO coupon_codes (pool, code, loaded_at) VALUES (:pool, :code, :now)"
            " ON CONFLICT (code) DO NOTHING",
            {"pool": pool, "code": code, "now": now},
        )
    added = _count_free(tx, pool) - before
    row = tx.one(
        "UPDATE code_pools SET total = total + :added, remaining = remaining + :added"
        " WHERE pool = :pool RETURNING remaining",
        {"added": added, "pool": pool},
    )
    assert row is not None
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.CODES_LOADED,
        amount=added,
        unit="codes",
        detail={"pool": pool, "added": added, "duplicates": len(codes) - added},
        actor=actor,
    )
    return CodeLoad(
        pool=pool, added=added, duplicates=len(codes) - added, remaining=int(row["remaining"])
    )


def _count_free(tx: Tx, pool: str) -> int:
    row = tx.one(
        "SELECT COUNT(*) AS n FROM coupon_codes WHERE pool = :pool AND redemption_id IS NULL",
        {"pool": pool},
    )
    return int(row["n"]) if row else 0


def code_pool(tx: Tx, pool: str) -> CodePool | None:
    row = tx.one("SELECT pool, total, remaining FROM code_pools WHERE pool = :pool", {"pool": pool})
    if row is None:
        return None
    return CodePool(pool=row["pool"], total=int(row["total"]), remaining=int(row["remaining"]))


def ledger(
    tx: Tx,
    *,
    subject: str | None,
    since: int | None,
    until: int | None,
    after: int | None,
    limit: int,
) -> LedgerPage:
    # Only the filters given appear in the SQL (a NULL parameter has no type on PostgreSQL).
    where = ["seq > :after"]
    params: dict[str, Any] = {"after": after or 0, "limit": min(limit, MAX_PAGE) + 1}
    if subject is not None:
        where.append("subject = :subject")
        params["subject"] = subject
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    if until is not None:
        where.append("at < :until")
        params["until"] = until
    rows = tx.all(
        "SELECT seq, at, event, subject, jti, redemption_id, kind, amount, unit, detail,"  # noqa: S608
        " actor"
        f" FROM ledger WHERE {' AND '.join(where)} ORDER BY seq LIMIT :limit",
        params,
    )
    more = len(rows) > min(limit, MAX_PAGE)
    rows = rows[: min(limit, MAX_PAGE)]
    entries = tuple(
        LedgerEntry(
            seq=int(row["seq"]),
            at=from_us(row["at"]),
            event=LedgerEvent(row["event"]),
            subject=row["subject"],
            jti=row["jti"],
            redemption_id=row["redemption_id"],
            kind=row["kind"],
            amount=None if row["amount"] is None else int(row["amount"]),
            unit=row["unit"],
            detail=json.loads(row["detail"]),
            actor=row["actor"],
        )
        for row in rows
    )
    return LedgerPage(entries=entries, next_cursor=entries[-1].seq if more else None)


def record_issued(
    tx: Tx,
    token: IssuedToken,
    *,
    now: int,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Remember an issued token; False (and nothing written) if jti or alert id is known.

    ``detail`` adds members to the ledger row's detail (automatic compensations: their
    reason and ref); ``actor`` is the admin key's name, when an admin issued it.
    """
    added = tx.one(
        f"INSERT INTO issued_tokens ({ISSUED_COLUMNS}) VALUES (:jti, :subject, :issuer,"  # noqa: S608
        " :kind, :amount, :unit, :campaign, :expires_at, :alert_id, :token, :now, :message,"
        " :suggestion, :priority, :support_flag, :error_code, :incident, :alert_url, :severity,"
        " :segment, NULL)"
        " ON CONFLICT DO NOTHING RETURNING jti",
        {
            "jti": token.jti,
            "subject": token.subject,
            "issuer": token.issuer,
            "kind": token.kind,
            "amount": token.amount,
            "unit": token.unit,
            "campaign": token.campaign,
            "expires_at": to_us(token.expires_at),
            "alert_id": token.alert_id,
            "token": token.token,
            "now": now,
            "message": texts_json("message", token.message),
            "suggestion": texts_json("suggestion", token.suggestion),
            "priority": int(token.priority),
            "support_flag": int(token.support_flag),
            "error_code": token.error_code,
            "incident": token.incident,
            "alert_url": token.alert_url,
            "severity": token.severity,
            "segment": token.segment,
        },
    )
    if added is None:
        return False
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.ISSUED,
        subject=token.subject,
        jti=token.jti,
        kind=token.kind,
        amount=token.amount,
        unit=token.unit,
        detail={
            **(detail or {}),
            "campaign": token.campaign,
            "alert_id": token.alert_id,
            "priority": token.priority,
            "support_flag": token.support_flag,
        },
        actor=actor,
    )
    issued_event(tx, token, now=now)
    return True


def alert(tx: Tx, alert_id: str) -> IssuedToken | None:
    row = tx.one(
        f"SELECT {ISSUED_COLUMNS} FROM issued_tokens WHERE alert_id = :alert_id",  # noqa: S608
        {"alert_id": alert_id},
    )
    return None if row is None else issued(row)


def mark_shown(tx: Tx, alert_id: str, *, now: int) -> bool:
    """Set ``shown_at`` if it is not set yet; True if this call set it (once per voucher)."""
    return (
        tx.execute(
            "UPDATE issued_tokens SET shown_at = :now WHERE alert_id = :alert_id"
            " AND shown_at IS NULL",
            {"now": now, "alert_id": alert_id},
        )
        > 0
    )


def compensations(tx: Tx, subject: str, *, now: int) -> Compensations:
    # Through the ledger's (subject, seq) index: every redemption has exactly one
    # 'redeemed' ledger row with its subject, written in the same transaction, so the
    # redemptions table needs no subject index of its own (one B-tree less to write
    # per redemption).
    columns = ", ".join(f"r.{name.strip()}" for name in REDEMPTION_COLUMNS.split(","))
    redeemed = tx.all(
        f"SELECT {columns} FROM ledger AS l JOIN redemptions AS r"  # noqa: S608
        " ON r.id = l.redemption_id WHERE l.subject = :subject AND l.event = 'redeemed'"
        " ORDER BY r.redeemed_at DESC, r.id LIMIT :limit",
        {"subject": subject, "limit": MAX_PAGE},
    )
    pending = tx.all(
        f"SELECT {ISSUED_COLUMNS} FROM issued_tokens AS i WHERE subject = :subject"  # noqa: S608
        " AND expires_at > :now"
        " AND NOT EXISTS (SELECT 1 FROM redemptions AS r WHERE r.jti = i.jti)"
        " ORDER BY expires_at, jti LIMIT :limit",
        {"subject": subject, "now": now, "limit": MAX_PAGE},
    )
    return Compensations(
        subject=subject,
        redeemed=tuple(redemption(row) for row in redeemed),
        pending=tuple(issued(row) for row in pending),
    )


def set_user_cap(tx: Tx, cap: UserCap, *, now: int, actor: str | None = None) -> None:
    """Create or change a cap; the change is a ``cap_set`` ledger row."""
    period = int(cap.period.total_seconds())
    tx.execute(
        "INSERT INTO user_caps (scope, max_redemptions, period_seconds)"
        " VALUES (:scope, :max, :period) ON CONFLICT (scope) DO UPDATE SET"
        " max_redemptions = :max, period_seconds = :period",
        {"scope": cap.scope, "max": cap.max_redemptions, "period": period},
    )
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.CAP_SET,
        kind=cap.scope,
        amount=cap.max_redemptions,
        unit="redemptions",
        detail={
            "scope": cap.scope,
            "max_redemptions": cap.max_redemptions,
            "period_seconds": period,
        },
        actor=actor,
    )


def remove_user_cap(tx: Tx, scope: str, *, now: int, actor: str | None = None) -> bool:
    """Delete a cap; a removal that deleted something is a ``cap_removed`` ledger row."""
    removed = tx.execute("DELETE FROM user_caps WHERE scope = :scope", {"scope": scope}) > 0
    if removed:
        append_ledger(
            tx,
            at=now,
            event=LedgerEvent.CAP_REMOVED,
            kind=scope,
            detail={"scope": scope},
            actor=actor,
        )
    return removed


def user_caps(tx: Tx) -> list[UserCap]:
    return [
        UserCap(
            scope=row["scope"],
            max_redemptions=int(row["max_redemptions"]),
            period=timedelta(seconds=int(row["period_seconds"])),
        )
        for row in tx.all(
            "SELECT scope, max_redemptions, period_seconds FROM user_caps ORDER BY scope"
        )
    ]
