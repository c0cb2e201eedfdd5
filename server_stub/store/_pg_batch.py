"""Redemptions on PostgreSQL: a batch in one transaction, two round trips, one commit.

The first round trip sends ``BEGIN`` and one call of ``errdiscount_redeem_batch``
(`_pg_functions`): claims and grants of every item, in order, inside the database.
Its JSON answer becomes the typed outcomes here; the store's `ResponseRenderer` renders
each claimed item's outcome, and the second round trip stores those responses under
their keys (``errdiscount_complete_batch``), writes their outbox events and, last,
charges each budget row once for the batch (``errdiscount_charge_budgets``, from
migration 12), together with ``COMMIT``. So a reply still means the redemption and
its stored response are durable together, exactly as in the Python path
(`_store.Store._redeem_keyed`), whose outcomes and rows the equivalence tests compare
with these. An unkeyed item (a bare `RedemptionRequest`, once the
function takes them: `Store`) has no claim and nothing to store: only its grant runs,
as `Store.redeem` runs it.
"""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from psycopg.types.json import Jsonb

from ._base import from_us, opt_from_us, to_us
from ._errors import BudgetMoved, StoreError
from ._models import (
    AlreadyRedeemed,
    BudgetExhausted,
    Grant,
    InFlight,
    InventoryExhausted,
    KeyedOutcome,
    KeyedRedemption,
    Mismatch,
    Redeemed,
    RedeemOutcome,
    Redemption,
    RedemptionRequest,
    Replay,
    ResponseRenderer,
    UserCapReached,
)
from ._outbox_events import REDEEMED_BATCH_SQL, redeemed_batch_params
from ._redeem import new_redemption_id
from ._rows import redemption

__all__ = ["MAX_PG_BATCH", "BatchItem", "PipelinedDialect", "redeem_batch"]

#: one item of a batch: keyed (`Store.redeem_idempotent`) or not (`Store.redeem`)
BatchItem = KeyedRedemption | RedemptionRequest

#: items per transaction at most: one subtransaction each, and PostgreSQL caches 64
#: subtransactions per transaction before it spills them (a slow path for every reader)
MAX_PG_BATCH = 64

_CALL = "SELECT errdiscount_redeem_batch(:items, :now::bigint, :ttl::bigint, :lock::bigint)"
_CALL_BUDGET_PER_BATCH = (
    "SELECT errdiscount_redeem_batch(:items, :now::bigint, :ttl::bigint, :lock::bigint,"
    " :lock_budget::boolean)"
)
_CHARGE = "SELECT errdiscount_charge_budgets(:charges, :now::bigint)"
_COMPLETE = (
    "SELECT errdiscount_complete_batch(:scopes::text[], :keys::text[], :owners::text[],"
    " :statuses::int[], :bodies::bytea[], :now::bigint)"
)


@runtime_checkable
class PipelinedDialect(Protocol):
    """A dialect that runs one transaction as two pipelined round trips (PostgreSQL)."""

    def run_pipelined(self, sql: str, params: Any, follow: Any) -> Any: ...


def redeem_batch(
    dialect: PipelinedDialect,
    items: Sequence[BatchItem],
    *,
    now: int,
    ttl: int,
    lock_timeout: int,
    render: ResponseRenderer | None,
    budget_per_batch: bool = False,
) -> list[KeyedOutcome]:
    """Claim, redeem and store the response of every item, in order, in one transaction.

    An unkeyed item is only redeemed (no claim, no stored response): its entry is the
    `RedeemOutcome`. With ``budget_per_batch`` (migration 12) each budget row is
    charged once, by the last statement before the commit; if a concurrent batch took
    what this one counted on (`BudgetMoved`), the batch runs once more deciding under
    the rows' locks, as the per-item charge did.
    """
    run = functools.partial(
        _redeem_batch, dialect, items, now=now, ttl=ttl, lock_timeout=lock_timeout,
        render=render, budget_per_batch=budget_per_batch,
    )  # fmt: skip
    try:
        return run(lock_budget=False)
    except BudgetMoved:
        return run(lock_budget=True)


def _redeem_batch(
    dialect: PipelinedDialect,
    items: Sequence[BatchItem],
    *,
    now: int,
    ttl: int,
    lock_timeout: int,
    render: ResponseRenderer | None,
    budget_per_batch: bool,
    lock_budget: bool,
) -> list[KeyedOutcome]:
    ids = [new_redemption_id(now) for _ in items]
    payload = [_payload(item, rid) for item, rid in zip(items, ids, strict=True)]
    done: list[KeyedOutcome] = []
    expected = len(items) + 1 if budget_per_batch else len(items)

    def follow(answer: Any) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(answer, list) or len(answer) != expected:
            raise StoreError("postgresql: the redemption batch answered out of shape")
        charges = answer.pop()["charges"] if budget_per_batch else []
        done.clear()
        rendered: dict[int, Replay] = {}
        complete: dict[str, list[Any]] = {
            "scopes": [], "keys": [], "owners": [], "statuses": [], "bodies": [],
        }  # fmt: skip
        for index, (item, sent, result) in enumerate(zip(items, payload, answer, strict=True)):
            claim = result["claim"]
            outcome: KeyedOutcome
            if isinstance(item, RedemptionRequest):  # no key: always claimed "new"
                outcome = _outcome(item, None, ids[index], now, result)
            elif claim == "new":
                assert render is not None  # `Store` passes one whenever an item is keyed
                granted = _outcome(item.request, item.key, ids[index], now, result)
                response = render(granted)
                rendered[index] = Replay(status=response.status, body=response.body)
                for name, value in (
                    ("scopes", item.scope),
                    ("keys", item.key),
                    ("owners", sent["owner"]),
                    ("statuses", response.status),
                    ("bodies", response.body),
                ):
                    complete[name].append(value)
                outcome = granted
            elif claim == "replay_of":
                outcome = rendered[int(result["index"])]
            elif claim == "replay":
                outcome = Replay(
                    status=int(result["status"]), body=base64.b64decode(result["body"])
                )
            elif claim == "mismatch":
                outcome = Mismatch()
            else:
                outcome = InFlight(locked_until=from_us(int(result["locked_until"])))
            done.append(outcome)
        statements: list[tuple[str, dict[str, Any]]] = []
        if complete["keys"]:
            statements.append((_COMPLETE, {**complete, "now": now}))
        granted_now = [o.redemption for o in done if isinstance(o, Redeemed)]
        if granted_now:
            statements.append((REDEEMED_BATCH_SQL, redeemed_batch_params(granted_now, now=now)))
        if charges:  # last: the budget rows stay locked only until the commit right after
            statements.append((_CHARGE, {"charges": Jsonb(charges), "now": now}))
        return statements

    params: dict[str, Any] = {"items": Jsonb(payload), "now": now, "ttl": ttl, "lock": lock_timeout}
    if budget_per_batch:
        params["lock_budget"] = lock_budget
    dialect.run_pipelined(_CALL_BUDGET_PER_BATCH if budget_per_batch else _CALL, params, follow)
    return list(done)


def _payload(item: BatchItem, rid: str) -> dict[str, Any]:
    if isinstance(item, KeyedRedemption):
        request = item.request
        claim: dict[str, Any] = {
            "scope": item.scope,
            "key": item.key,
            "fp": item.fingerprint,
            "owner": secrets.token_hex(16),
        }
    else:  # the function skips the claim of an item whose key is null
        request = item
        claim = {"scope": None, "key": None, "fp": None, "owner": None}
    return {
        **claim,
        "id": rid,
        "jti": request.jti,
        "subject": request.subject,
        "issuer": request.issuer,
        "kind": request.kind,
        "amount": request.amount,
        "unit": request.unit,
        "campaign": request.campaign,
        "priority": request.priority,
        "support_flag": request.support_flag,
        "expires_at": None if request.expires_at is None else to_us(request.expires_at),
    }


def _outcome(
    request: RedemptionRequest, key: str | None, rid: str, now: int, result: dict[str, Any]
) -> RedeemOutcome:
    kind = result["outcome"]
    if kind == "redeemed":
        return Redeemed(
            Redemption(
                id=rid,
                jti=request.jti,
                subject=request.subject,
                issuer=request.issuer,
                kind=request.kind,
                amount=request.amount,
                unit=request.unit,
                campaign=request.campaign,
                grant=Grant(
                    amount=request.amount, unit=request.unit, coupon_code=result["coupon_code"]
                ),
                redeemed_at=from_us(now),
                expires_at=None
                if request.expires_at is None
                else opt_from_us(to_us(request.expires_at)),
                idempotency_key=key,
            )
        )
    if kind == "already_redeemed":
        return AlreadyRedeemed(redemption(result["row"]))
    if kind == "user_cap":
        return UserCapReached(
            subject=result["subject"],
            scope=result["scope"],
            max_redemptions=int(result["max_redemptions"]),
            resets_at=from_us(int(result["resets_at"])),
        )
    if kind == "budget_exhausted":
        return BudgetExhausted(
            kind=result["kind"],
            campaign=result["campaign"],
            remaining=int(result["remaining"]),
            unit=result["unit"],
        )
    if kind == "inventory_exhausted":
        return InventoryExhausted(pool=result["pool"])
    raise StoreError(f"postgresql: unknown redemption outcome {str(kind)[:32]!r}")
