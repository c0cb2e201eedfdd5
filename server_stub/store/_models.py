"""Frozen value classes of the store: requests, records and typed outcomes.

Business results are values, never exceptions: `redeem` returns one of `Redeemed`,
`AlreadyRedeemed`, `BudgetExhausted`, `InventoryExhausted`, `UserCapReached`;
`reverse` returns `Reversed`, `AlreadyReversed` or `RedemptionNotFound`;
`begin_idempotent` returns `New`, `Replay`, `InFlight` or `Mismatch`.

Amounts are integers in the unit's smallest denomination (cents, points, days): the
store never does floating-point arithmetic on money-like values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

import attrs


class LedgerEvent(enum.StrEnum):
    """What a ledger row records. The ledger is append-only: rows are never changed."""

    REDEEMED = "redeemed"
    REVERSED = "reversed"
    BUDGET_SET = "budget_set"
    CODES_LOADED = "codes_loaded"
    ISSUED = "issued"
    CAP_SET = "cap_set"
    CAP_REMOVED = "cap_removed"
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_CLOSED = "incident_closed"


@attrs.frozen
class RedemptionRequest:
    """A verified token's claims, as the redemption endpoint hands them to the store.

    Args:
        jti: the token id; the single arbiter of exactly-once (never the token string).
        subject: who receives the grant (the token's ``sub``).
        issuer: the token's ``iss``.
        kind: compensation kind, e.g. ``coupon``, ``points``, ``days``, ``credit``.
        amount: positive integer in the unit's smallest denomination.
        unit: e.g. ``EUR_cent``, ``points``, ``days``, ``percent``.
        campaign: what the budget is drawn from (an incident id, or the kind).
        expires_at: the token's expiry, kept for the audit trail.
        priority, support_flag: the token's care flags (high-value users), kept in the
            ledger so support can follow up from it.
    """

    jti: str
    subject: str
    issuer: str
    kind: str
    amount: int
    unit: str
    campaign: str
    expires_at: datetime | None = None
    priority: bool = False
    support_flag: bool = False


@attrs.frozen
class Grant:
    """What a redemption gave: the amount, and a coupon code when one was taken."""

    amount: int
    unit: str
    coupon_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"amount": self.amount, "unit": self.unit}
        if self.coupon_code is not None:
            data["coupon_code"] = self.coupon_code
        return data


@attrs.frozen
class Redemption:
    """One redeemed token. ``reversed_at`` is set (never deleted) when rolled back."""

    id: str
    jti: str
    subject: str
    issuer: str
    kind: str
    amount: int
    unit: str
    campaign: str
    grant: Grant
    redeemed_at: datetime
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    reversed_at: datetime | None = None
    reversal_reason: str | None = None


@attrs.frozen
class Redeemed:
    """The token was redeemed now, by this call."""

    redemption: Redemption


@attrs.frozen
class AlreadyRedeemed:
    """The jti was redeemed before; ``redemption`` is that first redemption.

    The server compares ``redemption.subject`` with the caller to tell a same-subject
    replay (answer with the original) from anyone else (409 TOKEN_ALREADY_REDEEMED).
    """

    redemption: Redemption


@attrs.frozen
class BudgetExhausted:
    """The budget (kind, campaign) cannot cover the amount (or is in another unit)."""

    kind: str
    campaign: str
    remaining: int
    unit: str


@attrs.frozen
class InventoryExhausted:
    """The coupon-code pool has no free code left."""

    pool: str


@attrs.frozen
class UserCapReached:
    """The subject reached ``max_redemptions`` in the current period for ``scope``."""

    subject: str
    scope: str
    max_redemptions: int
    resets_at: datetime


RedeemOutcome = Redeemed | AlreadyRedeemed | BudgetExhausted | InventoryExhausted | UserCapReached


@attrs.frozen
class Reversed:
    """The redemption was rolled back now (compensating ledger entry written)."""

    redemption: Redemption


@attrs.frozen
class AlreadyReversed:
    """The redemption had been rolled back before; nothing changed."""

    redemption: Redemption


@attrs.frozen
class RedemptionNotFound:
    """No redemption has that id."""

    redemption_id: str


ReverseOutcome = Reversed | AlreadyReversed | RedemptionNotFound


@attrs.frozen
class New:
    """This request owns the idempotency key: run it, then complete (or abandon) it.

    ``owner`` is a random claim token: only its holder can complete the record, so a
    request whose lock timed out cannot overwrite the request that took the key over.
    """

    scope: str
    key: str
    owner: str
    taken_over: bool = False


@attrs.frozen
class Replay:
    """The key completed before with the same fingerprint: send this response again."""

    status: int
    body: bytes = attrs.field(repr=False)


@attrs.frozen
class InFlight:
    """Another request holds the key (HTTP 409); it can be taken over at ``locked_until``."""

    locked_until: datetime


@attrs.frozen
class Mismatch:
    """The key was used with a different request fingerprint (HTTP 422)."""


IdempotencyOutcome = New | Replay | InFlight | Mismatch


@attrs.frozen
class KeyedRedemption:
    """One `Store.redeem_idempotent` call, for `Store.redeem_idempotent_batch`: data only."""

    request: RedemptionRequest
    scope: str
    key: str = attrs.field(repr=False)
    fingerprint: str = attrs.field(repr=False)


@attrs.frozen
class StoredResponse:
    """The response an idempotency record keeps, replayed byte for byte (`Replay`)."""

    status: int
    body: bytes = attrs.field(repr=False)


class ResponseRenderer(Protocol):
    """How a store encodes a redemption outcome into its idempotency record.

    Given once, when the store is opened (`open_store(render=...)`), never per call:
    the store calls it inside the redemption transaction, so the record and the
    redemption commit together. It must be pure and quick (it runs under the write
    lock); the caller renders the returned outcome with the same function, so what
    it answers is what a retry replays.
    """

    def __call__(self, outcome: RedeemOutcome, /) -> StoredResponse: ...


KeyedOutcome = RedeemOutcome | Replay | InFlight | Mismatch


@attrs.frozen
class Budget:
    """Remaining allowance for one (kind, campaign); ``remaining`` is never negative."""

    kind: str
    campaign: str
    unit: str
    total: int
    remaining: int


@attrs.frozen
class CodePool:
    """A coupon-code pool: codes loaded in total and codes still free."""

    pool: str
    total: int
    remaining: int


@attrs.frozen
class CodeLoad:
    """Result of loading codes: how many were new, how many were already known."""

    pool: str
    added: int
    duplicates: int
    remaining: int


@attrs.frozen
class UserCap:
    """At most ``max_redemptions`` per subject per ``period`` for ``scope``.

    ``scope`` is a compensation kind, or ``*`` for all kinds together. Periods are fixed
    windows aligned to the Unix epoch (a 1-day period is a UTC calendar day).
    """

    scope: str
    max_redemptions: int
    period: timedelta


@attrs.frozen
class LedgerEntry:
    """One append-only audit row. ``seq`` orders rows and serves as the page cursor."""

    seq: int
    at: datetime
    event: LedgerEvent
    subject: str | None
    jti: str | None
    redemption_id: str | None
    kind: str | None
    amount: int | None
    unit: str | None
    detail: Mapping[str, Any]
    #: the admin key's name for entries an admin action caused (issue, reversal,
    #: budget, codes, caps); None for redemptions, which a token holder causes
    actor: str | None = None


@attrs.frozen
class LedgerPage:
    """A page of the ledger; pass ``next_cursor`` as ``after`` for the next page."""

    entries: tuple[LedgerEntry, ...]
    next_cursor: int | None


def _frozen_texts(texts: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(texts))


@attrs.frozen
class IssuedToken:
    """A token the server issued: for pending compensations and alert-id lookups.

    ``token`` is a bearer credential: it is kept out of reprs.
    """

    jti: str
    subject: str
    issuer: str
    kind: str
    amount: int
    unit: str
    campaign: str
    expires_at: datetime
    alert_id: str
    token: str = attrs.field(repr=False)
    created_at: datetime | None = None
    #: the provider's own words, language tag → text ("und" when untagged); empty: none
    message: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_texts, hash=False)
    suggestion: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_texts, hash=False)
    #: the policy's care flags for this user (high-value users): handle first, follow up
    priority: bool = False
    support_flag: bool = False
    #: what the events (outbox) report: the error, the incident, the popup URL
    error_code: str | None = None
    incident: str | None = None
    alert_url: str | None = None
    #: what the funnel groups by: the error's severity (the grade) and the user's segment
    severity: str | None = None
    segment: str | None = None
    #: when the voucher's alert was first shown (its JSON or page fetched); None: never
    shown_at: datetime | None = None


@attrs.frozen
class Compensations:
    """What a subject got (redeemed) and still has to redeem (issued, not expired)."""

    subject: str
    redeemed: tuple[Redemption, ...]
    pending: tuple[IssuedToken, ...]
