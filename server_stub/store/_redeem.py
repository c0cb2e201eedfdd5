"""The redemption and reversal transactions: all or nothing, never negative.

One redemption is one transaction, in this order (the order is also the lock order on
PostgreSQL, so two transactions never wait on each other in a cycle):

1. ``INSERT INTO redemptions ... ON CONFLICT (jti) DO NOTHING``: the UNIQUE jti is the
   arbiter. A concurrent second redeemer of the same jti waits for the first to commit
   and then finds the conflict: `AlreadyRedeemed` with the first redemption.
2. Per-subject caps: a conditional increment ``used = used + 1 WHERE used < max`` on a
   counter row per (subject, scope, window); 0 rows: `UserCapReached`.
3. Inventory (kind ``coupon`` only, pool named by the campaign, else ``coupon``): a
   conditional decrement of the pool's counter row, which also serializes claimers of
   that pool, then the claim of exactly one free code; 0 rows: `InventoryExhausted`.
4. Budget, last: ``remaining = remaining - amount WHERE remaining >= amount`` on the
   most specific budget row, (kind, campaign) then (kind, ``*``); 0 rows:
   `BudgetExhausted`. No budget row at all: unlimited. Every redemption of a campaign
   shares that row, so it is locked as late as possible (held until the commit).
5. The ledger row, and the idempotency record completed with the response the store's
   `ResponseRenderer` gives for the outcome (given when the store was opened).

On PostgreSQL, keyed batches run the same steps in one server-side function
(`_pg_functions`, `_pg_batch`); the equivalence tests hold both to the same outcomes
and rows.

Steps 2-4 run under a savepoint: a refusal rolls them back (and the redemption row),
while the idempotency record still stores the refusal, so a retry replays it.
"""

from __future__ import annotations

import json
import secrets

from ._base import Row, Tx, append_ledger, dumps, from_us, to_us
from ._errors import StoreError
from ._idempotency import complete
from ._models import (
    AlreadyRedeemed,
    AlreadyReversed,
    BudgetExhausted,
    Grant,
    InventoryExhausted,
    LedgerEvent,
    New,
    Redeemed,
    RedeemOutcome,
    Redemption,
    RedemptionNotFound,
    RedemptionRequest,
    ResponseRenderer,
    Reversed,
    ReverseOutcome,
    UserCapReached,
)
from ._outbox_events import redeemed_event, reversed_event
from ._rows import REDEMPTION_COLUMNS, redemption

#: the kind whose redemptions take a code from a pool, when a pool exists
COUPON_KIND = "coupon"
#: the catch-all campaign of a budget, and the all-kinds scope of a cap
ANY = "*"


def new_redemption_id(now: int) -> str:
    """``rdm_`` + the time in µs (14 hex digits, so ids sort by time) + 64 random bits.

    Time-ordered ids land at the right edge of the redemptions B-tree (clustered on
    the id on SQLite): one warm page per insert instead of a random one.
    """
    return f"rdm_{now:014x}{secrets.token_hex(8)}"


def redeem(
    tx: Tx,
    request: RedemptionRequest,
    *,
    redemption_id: str,
    now: int,
    claim: New | None,
    render: ResponseRenderer | None,
) -> RedeemOutcome:
    """Redeem in ``tx``; with a claim, also store ``render(outcome)`` under its key."""
    tx.execute("SAVEPOINT redeem_grant")
    outcome = _grant(tx, request, redemption_id=redemption_id, now=now, claim=claim)
    if not isinstance(outcome, Redeemed):
        tx.execute("ROLLBACK TO SAVEPOINT redeem_grant")
    tx.execute("RELEASE SAVEPOINT redeem_grant")
    if claim is not None and render is not None:
        response = render(outcome)
        complete(tx, claim, response.status, response.body, now=now)
    return outcome


def _grant(
    tx: Tx, request: RedemptionRequest, *, redemption_id: str, now: int, claim: New | None
) -> RedeemOutcome:
    inserted = tx.one(
        "INSERT INTO redemptions (id, jti, subject, issuer, kind, amount, unit, campaign,"
        " grant_json, cap_usage, idempotency_key, expires_at, redeemed_at)"
        " VALUES (:id, :jti, :subject, :issuer, :kind, :amount, :unit, :campaign,"
        " '{}', '[]', :idempotency_key, :expires_at, :now)"
        " ON CONFLICT (jti) DO NOTHING RETURNING id",
        {
            "id": redemption_id,
            "jti": request.jti,
            "subject": request.subject,
            "issuer": request.issuer,
            "kind": request.kind,
            "amount": request.amount,
            "unit": request.unit,
            "campaign": request.campaign,
            "idempotency_key": claim.key if claim is not None else None,
            "expires_at": None if request.expires_at is None else to_us(request.expires_at),
            "now": now,
        },
    )
    if inserted is None:
        existing = _by(tx, "jti", request.jti)
        if existing is None:  # the conflicting row cannot vanish: redemptions are kept
            raise StoreError("redemption conflict without a row", retryable=True)
        return AlreadyRedeemed(redemption(existing))

    capped = _charge_caps(tx, request, now=now)
    if isinstance(capped, UserCapReached):
        return capped
    code: str | None = None
    if request.kind == COUPON_KIND:
        taken = _take_code(tx, request.campaign, redemption_id)
        if isinstance(taken, InventoryExhausted):
            return taken
        code = taken
    budget = _charge_budget(tx, request, now=now)
    if isinstance(budget, BudgetExhausted):
        return budget
    grant = Grant(amount=request.amount, unit=request.unit, coupon_code=code)
    grant_json = grant.to_json()
    tx.execute(
        "UPDATE redemptions SET grant_json = :grant, budget_campaign = :budget,"
        " cap_usage = :caps WHERE id = :id",
        {
            "grant": dumps(grant_json),
            "budget": budget,
            "caps": dumps(capped),
            "id": redemption_id,
        },
    )
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.REDEEMED,
        subject=request.subject,
        jti=request.jti,
        redemption_id=redemption_id,
        kind=request.kind,
        amount=request.amount,
        unit=request.unit,
        detail={
            "campaign": request.campaign,
            "issuer": request.issuer,
            "budget": budget,
            "grant": grant_json,
            "priority": request.priority,
            "support_flag": request.support_flag,
        },
    )
    redeemed = Redeemed(
        Redemption(
            id=redemption_id,
            jti=request.jti,
            subject=request.subject,
            issuer=request.issuer,
            kind=request.kind,
            amount=request.amount,
            unit=request.unit,
            campaign=request.campaign,
            grant=grant,
            redeemed_at=from_us(now),
            expires_at=None if request.expires_at is None else from_us(to_us(request.expires_at)),
            idempotency_key=claim.key if claim is not None else None,
        )
    )
    redeemed_event(tx, redeemed.redemption, now=now)
    return redeemed


def _by(tx: Tx, column: str, value: str) -> Row | None:
    assert column in ("id", "jti")
    sql = f"SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE {column} = :value"  # noqa: S608
    return tx.one(sql, {"value": value})


def _charge_caps(
    tx: Tx, request: RedemptionRequest, *, now: int
) -> list[list[object]] | UserCapReached:
    caps = tx.all(
        "SELECT scope, max_redemptions, period_seconds FROM user_caps"
        " WHERE scope = :any OR scope = :kind ORDER BY scope",
        {"any": ANY, "kind": request.kind},
    )
    charged: list[list[object]] = []
    for cap in caps:
        period = int(cap["period_seconds"]) * 1_000_000
        window = now - now % period
        maximum = int(cap["max_redemptions"])
        # One upsert per cap: a new window row starts at 1 (so a cap of 0 is refused
        # without writing), an existing one counts up only while below the cap.
        counted = maximum > 0 and tx.one(
            "INSERT INTO subject_usage (subject, scope, window_start, used)"
            " VALUES (:subject, :scope, :window, 1)"
            " ON CONFLICT (subject, scope, window_start) DO UPDATE"
            " SET used = subject_usage.used + 1 WHERE subject_usage.used < :max"
            " RETURNING used",
            {"subject": request.subject, "scope": cap["scope"], "window": window, "max": maximum},
        )
        if not counted:
            return UserCapReached(
                subject=request.subject,
                scope=cap["scope"],
                max_redemptions=maximum,
                resets_at=from_us(window + period),
            )
        charged.append([cap["scope"], window])
    return charged


def _charge_budget(tx: Tx, request: RedemptionRequest, *, now: int) -> str | BudgetExhausted | None:
    """Charge the most specific budget; returns its campaign, None when unlimited.

    The most specific existing row, (kind, campaign) else (kind, ``*``), decides: one
    conditional UPDATE picks and charges it. Only when it changed nothing does a
    SELECT tell "no budget" (unlimited) from "exhausted" (or another unit).
    """
    params = {
        "kind": request.kind,
        "campaign": request.campaign,
        "any": ANY,
        "unit": request.unit,
        "amount": request.amount,
        "now": now,
    }
    # A budget created or refilled between the UPDATE and the SELECT (PostgreSQL) is
    # retried once.
    for _ in range(2):
        charged = tx.one(
            "UPDATE budgets SET remaining = remaining - :amount, updated_at = :now"
            " WHERE kind = :kind AND campaign = (SELECT campaign FROM budgets"
            " WHERE kind = :kind AND campaign IN (:campaign, :any)"
            " ORDER BY campaign = :any LIMIT 1)"
            " AND unit = :unit AND remaining >= :amount RETURNING campaign",
            params,
        )
        if charged is not None:
            return str(charged["campaign"])
        row = tx.one(
            "SELECT campaign, unit, remaining FROM budgets"
            " WHERE kind = :kind AND campaign IN (:campaign, :any)"
            " ORDER BY campaign = :any LIMIT 1",
            params,
        )
        if row is None:
            return None
        if row["unit"] != request.unit or int(row["remaining"]) < request.amount:
            return BudgetExhausted(
                kind=request.kind,
                campaign=row["campaign"],
                remaining=int(row["remaining"]),
                unit=row["unit"],
            )
    raise StoreError("budget changed twice during one redemption", retryable=True)


def _take_code(tx: Tx, campaign: str, redemption_id: str) -> str | InventoryExhausted | None:
    pools = [campaign] if campaign == COUPON_KIND else [campaign, COUPON_KIND]
    for pool in pools:
        counted = tx.execute(
            "UPDATE code_pools SET remaining = remaining - 1 WHERE pool = :pool AND remaining >= 1",
            {"pool": pool},
        )
        if not counted:
            if tx.one("SELECT pool FROM code_pools WHERE pool = :pool", {"pool": pool}) is None:
                continue
            return InventoryExhausted(pool=pool)
        # The pool row is now locked by us until commit; every writer of this pool's
        # codes takes that lock first, so the oldest free code is ours alone.
        row = tx.one(
            "UPDATE coupon_codes SET redemption_id = :rid WHERE id = (SELECT MIN(id)"
            " FROM coupon_codes WHERE pool = :pool AND redemption_id IS NULL)"
            " AND redemption_id IS NULL RETURNING code",
            {"rid": redemption_id, "pool": pool},
        )
        if row is None:
            raise StoreError(f"code pool counter out of step with its codes: {pool}")
        return str(row["code"])
    return None


def reverse(
    tx: Tx, redemption_id: str, reason: str, *, now: int, actor: str | None = None
) -> ReverseOutcome:
    """Roll back: flag the row, restore budget and cap, void the code, append to the ledger.

    The coupon code is voided, not returned to the pool: it was shown to the subject
    and may still be used at a checkout, so handing it to someone else could pay twice.
    """
    flagged = tx.execute(
        "UPDATE redemptions SET reversed_at = :now, reversal_reason = :reason"
        " WHERE id = :id AND reversed_at IS NULL",
        {"now": now, "reason": reason, "id": redemption_id},
    )
    row = tx.one(
        f"SELECT {REDEMPTION_COLUMNS}, budget_campaign, cap_usage FROM redemptions"  # noqa: S608
        " WHERE id = :id",
        {"id": redemption_id},
    )
    if row is None:
        return RedemptionNotFound(redemption_id=redemption_id)
    if not flagged:
        return AlreadyReversed(redemption(row))
    for scope, window in json.loads(row["cap_usage"]):
        tx.execute(
            "UPDATE subject_usage SET used = used - 1 WHERE subject = :subject"
            " AND scope = :scope AND window_start = :window AND used > 0",
            {"subject": row["subject"], "scope": scope, "window": window},
        )
    voided = tx.execute(
        "UPDATE coupon_codes SET voided_at = :now WHERE redemption_id = :id",
        {"now": now, "id": redemption_id},
    )
    # The budget last, as in a redemption (one lock order: no deadlock between them).
    restored = 0
    if row["budget_campaign"] is not None:
        restored = tx.execute(
            "UPDATE budgets SET updated_at = :now, remaining = CASE"
            " WHEN remaining + :amount > total THEN total ELSE remaining + :amount END"
            " WHERE kind = :kind AND campaign = :campaign AND unit = :unit",
            {
                "now": now,
                "amount": row["amount"],
                "kind": row["kind"],
                "campaign": row["budget_campaign"],
                "unit": row["unit"],
            },
        )
    append_ledger(
        tx,
        at=now,
        event=LedgerEvent.REVERSED,
        subject=row["subject"],
        jti=row["jti"],
        redemption_id=redemption_id,
        kind=row["kind"],
        amount=row["amount"],
        unit=row["unit"],
        detail={
            "reason": reason,
            "budget": row["budget_campaign"],
            "budget_restored": bool(restored),
            "code_voided": bool(voided),
        },
        actor=actor,
    )
    reversed_ = Reversed(redemption(row))
    reversed_event(tx, reversed_.redemption, reason, now=now)
    return reversed_
