"""Reads of the compensation reports: the voucher funnel and the outcome comparison.

The funnel is aggregated in SQL per UTC day and grouping dimension (error code,
severity, segment, unit), one GROUP BY over the vouchers issued in the window
(index ``issued_tokens_by_created``) joined to their redemptions by jti; weeks and
months are folded from days by the caller. The outcome comparison reads three small
projections (failures per user, the users' vouchers, the outcome times) and leaves
the per-user logic to `server_stub.analytics`, where the SDK's failure rule lives.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from ._base import Tx, from_us, opt_from_us

DAY_US = 86_400_000_000


@attrs.frozen
class FunnelRow:
    """Vouchers issued on one UTC day with one (error code, severity, segment, unit)."""

    day: datetime
    error_code: str | None
    severity: str | None
    segment: str | None
    unit: str
    issued: int
    shown: int
    redeemed: int
    reversed: int
    #: store amounts (cents for currencies): issued, and redeemed net of reversals
    issued_amount: int
    redeemed_amount: int


@attrs.frozen
class FailureRow:
    """A user's first failed call with one (category, status) in the window."""

    user_id: str
    category: str | None
    status: int | None
    first: datetime


@attrs.frozen
class VoucherRow:
    """A voucher issued to a user, and its redemption (if any)."""

    subject: str
    issued_at: datetime
    redeemed_at: datetime | None
    reversed_at: datetime | None


def _int(value: object) -> int:
    # PostgreSQL's SUM of BIGINT is NUMERIC (a Decimal): the values are whole.
    return 0 if value is None else int(value)  # type: ignore[call-overload]


def funnel_rows(tx: Tx, *, since: int, until: int) -> list[FunnelRow]:
    rows = tx.all(
        "SELECT i.created_at / :day AS day, i.error_code, i.severity, i.segment, i.unit,"
        " COUNT(*) AS issued,"
        " SUM(CASE WHEN i.shown_at IS NOT NULL THEN 1 ELSE 0 END) AS shown,"
        " COUNT(r.id) AS redeemed,"
        " SUM(CASE WHEN r.reversed_at IS NOT NULL THEN 1 ELSE 0 END) AS reversed,"
        " SUM(i.amount) AS issued_amount,"
        " SUM(CASE WHEN r.id IS NOT NULL AND r.reversed_at IS NULL THEN r.amount ELSE 0 END)"
        " AS redeemed_amount"
        " FROM issued_tokens AS i LEFT JOIN redemptions AS r ON r.jti = i.jti"
        " WHERE i.created_at >= :since AND i.created_at < :until"
        " GROUP BY 1, 2, 3, 4, 5",
        {"day": DAY_US, "since": since, "until": until},
    )
    found = [
        FunnelRow(
            day=from_us(_int(row["day"]) * DAY_US),
            error_code=row["error_code"],
            severity=row["severity"],
            segment=row["segment"],
            unit=row["unit"],
            issued=_int(row["issued"]),
            shown=_int(row["shown"]),
            redeemed=_int(row["redeemed"]),
            reversed=_int(row["reversed"]),
            issued_amount=_int(row["issued_amount"]),
            redeemed_amount=_int(row["redeemed_amount"]),
        )
        for row in rows
    ]
    # One order on both back ends (they sort NULLs differently): unknowns first.
    return sorted(found, key=_funnel_order)


def _funnel_order(row: FunnelRow) -> tuple[object, ...]:
    return (
        row.day,
        *(
            (value is not None, value or "")
            for value in (row.error_code, row.severity, row.segment)
        ),
        row.unit,
    )


def failure_rows(tx: Tx, *, since: int, until: int) -> list[FailureRow]:
    """Failed calls of known users in [since, until), first time per (user, category, status)."""
    rows = tx.all(
        "SELECT user_id, category, status, MIN(ts) AS first FROM events"
        " WHERE ts >= :since AND ts < :until AND outcome = 'error' AND user_id IS NOT NULL"
        " GROUP BY user_id, category, status ORDER BY user_id, first",
        {"since": since, "until": until},
    )
    return [
        FailureRow(
            user_id=row["user_id"],
            category=row["category"],
            status=None if row["status"] is None else int(row["status"]),
            first=from_us(_int(row["first"])),
        )
        for row in rows
    ]


def voucher_rows(tx: Tx, *, since: int, until: int) -> list[VoucherRow]:
    """Vouchers issued in [since, until) with their redemption, by subject and time."""
    rows = tx.all(
        "SELECT i.subject, i.created_at, r.redeemed_at, r.reversed_at"
        " FROM issued_tokens AS i LEFT JOIN redemptions AS r ON r.jti = i.jti"
        " WHERE i.created_at >= :since AND i.created_at < :until"
        " ORDER BY i.subject, i.created_at",
        {"since": since, "until": until},
    )
    return [
        VoucherRow(
            subject=row["subject"],
            issued_at=from_us(_int(row["created_at"])),
            redeemed_at=opt_from_us(row["redeemed_at"]),
            reversed_at=opt_from_us(row["reversed_at"]),
        )
        for row in rows
    ]


def outcome_times(tx: Tx, *, name: str, since: int, until: int) -> list[tuple[str, datetime]]:
    """(user, time) of the outcome events named ``name`` in [since, until), by user and time."""
    rows = tx.all(
        "SELECT user_id, ts FROM outcome_events WHERE name = :name AND ts >= :since"
        " AND ts < :until AND user_id IS NOT NULL ORDER BY user_id, ts",
        {"name": name, "since": since, "until": until},
    )
    return [(row["user_id"], from_us(_int(row["ts"]))) for row in rows]
