"""The value classes of the redemption API: what `RedemptionClient` returns.

Each is a frozen attrs class, complete at construction, with a ``from_json``
that raises `ValueError` (or `KeyError`/`TypeError`) on a body of the wrong
shape; the client turns that into `InvalidResponseBody`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._tokens.spec import Compensation

__all__ = ["PendingCompensation", "Redemption", "RedemptionGrant", "UserCompensations"]


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("timestamp must be a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone")
    return moment


def _compensation(value: Any) -> Compensation:
    if not isinstance(value, Mapping):
        raise ValueError("compensation must be an object")
    amount = value["amount"]
    if not isinstance(value["kind"], str) or not isinstance(value["unit"], str):
        raise ValueError("compensation kind and unit are strings")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError("compensation amount is a number")
    return Compensation(value["kind"], amount, value["unit"])


@attrs.frozen
class RedemptionGrant:
    """What a redemption gave; the members that apply to ``kind`` are set.

    ``coupon_code`` (coupon; None when the server has no code pool), ``points``,
    ``days`` (extensions, retry chances), ``amount``/``unit`` (credits, coupons),
    ``count`` (retry chances).
    """

    kind: str
    coupon_code: str | None = None
    points: int | float | None = None
    days: int | float | None = None
    amount: int | float | None = None
    unit: str | None = None
    count: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> RedemptionGrant:
        if not isinstance(value, Mapping) or not isinstance(value.get("kind"), str):
            raise ValueError("grant must be an object with a kind")
        known = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


@attrs.frozen
class Redemption:
    """A redeemed token, as the server reports it."""

    id: str
    jti: str
    subject: str
    compensation: Compensation
    grant: RedemptionGrant
    redeemed_at: datetime
    reversed_at: datetime | None = None

    @classmethod
    def from_json(cls, value: Any) -> Redemption:
        if not isinstance(value, Mapping):
            raise ValueError("redemption must be an object")
        for name in ("id", "jti", "subject"):
            if not isinstance(value.get(name), str):
                raise ValueError(f"{name} must be a string")
        reversed_at = value.get("reversed_at")
        return cls(
            id=value["id"],
            jti=value["jti"],
            subject=value["subject"],
            compensation=_compensation(value.get("compensation")),
            grant=RedemptionGrant.from_json(value.get("grant")),
            redeemed_at=_time(value.get("redeemed_at")),
            reversed_at=None if reversed_at is None else _time(reversed_at),
        )


@attrs.frozen
class PendingCompensation:
    """An issued, unredeemed, unexpired token of a subject (the "at next login" reminder)."""

    jti: str
    alert_id: str
    alert_url: str | None
    compensation: Compensation
    expires_at: datetime


@attrs.frozen
class UserCompensations:
    """What a subject redeemed (newest first) and still has pending."""

    subject: str
    redeemed: tuple[Redemption, ...]
    pending: tuple[PendingCompensation, ...]

    @classmethod
    def from_json(cls, value: Any) -> UserCompensations:
        if not isinstance(value, Mapping) or not isinstance(value.get("subject"), str):
            raise ValueError("compensations must be an object with a subject")
        pending = tuple(
            PendingCompensation(
                jti=str(item["jti"]),
                alert_id=str(item["alert_id"]),
                alert_url=item.get("alert_url"),
                compensation=_compensation(item["compensation"]),
                expires_at=_time(item["expires_at"]),
            )
            for item in value.get("pending", [])
        )
        return cls(
            subject=value["subject"],
            redeemed=tuple(Redemption.from_json(r) for r in value.get("redeemed", [])),
            pending=pending,
        )
