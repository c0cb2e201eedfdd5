"""Frozen records of detection in the store: episodes, incidents, automatic compensations.

The detector (``server_stub.workers._detector``) derives them from the stored call
events; the store keeps them under the detector's deterministic ids, so recording the
same history twice changes nothing. Times are aware UTC datetimes; amounts are in the
store's integer units (docs/redemption.md), as for issued tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import attrs

__all__ = [
    "AUTO_STATUSES",
    "AutoCompensation",
    "AutoDuplicate",
    "AutoOutcome",
    "AutoRecorded",
    "CallObservation",
    "EpisodeRecord",
    "IncidentRecord",
    "UserCompensation",
    "UserProfile",
]

AutoStatus = Literal["issued", "dry_run", "refused", "withheld"]
#: the states of an automatic compensation row
AUTO_STATUSES: tuple[AutoStatus, ...] = ("issued", "dry_run", "refused", "withheld")


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class CallObservation:
    """One stored ``call`` event, with only what detection reads."""

    ts: datetime
    event_id: str
    user_id: str | None
    endpoint: str
    outcome: str
    category: str | None
    status: int | None
    count: int
    segment: str | None


@attrs.frozen(kw_only=True)
class EpisodeRecord:
    """A user's persistent failure on one endpoint (``end`` None while open)."""

    id: str
    user_id: str
    endpoint: str
    start: datetime
    end: datetime | None
    failures: int
    rule: str
    state: Literal["open", "closed"]
    detected_at: datetime


@attrs.frozen(kw_only=True)
class IncidentRecord:
    """An incident on ``scope`` (``("*",)``: every endpoint), automatic or declared.

    ``end`` of an open manual incident is its declared end, if any; ``severity`` and
    ``affected_users`` are known once it is closed. ``close_requested_at``: an
    operator asked to close it; the detector's next run closes it.
    """

    id: str
    scope: tuple[str, ...]
    start: datetime
    end: datetime | None
    severity: str | None
    manual: bool
    state: Literal["open", "closed"]
    affected_users: int | None
    declared_at: datetime
    close_requested_at: datetime | None = None
    closed_at: datetime | None = None


@attrs.frozen(kw_only=True)
class AutoCompensation:
    """One automatic compensation decision of the detector, as recorded.

    ``status``: ``issued`` (tokens ``jti`` and, for a severe incident's extra service
    time, ``extra_jti``), ``dry_run`` (recorded only: ``--auto-compensate dry-run``),
    ``refused`` (``why``: the budget that could not cover it) or ``withheld`` (``why``:
    ``cooldown`` or ``incident``). Exactly one row per (user_id, reason, ref).
    """

    user_id: str
    reason: Literal["episode", "incident"]
    ref: str
    status: AutoStatus
    why: str | None
    severity: str
    kind: str
    amount: int
    unit: str
    decided_at: datetime
    jti: str | None = None
    extra_jti: str | None = None
    detail: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, hash=False)
    created_at: datetime | None = None


@attrs.frozen(kw_only=True)
class AutoRecorded:
    """The decision was recorded now, with this (final) status."""

    compensation: AutoCompensation


@attrs.frozen(kw_only=True)
class AutoDuplicate:
    """(user, reason, ref) was recorded before: nothing changed, nothing issued."""

    user_id: str
    reason: str
    ref: str


AutoOutcome = AutoRecorded | AutoDuplicate


@attrs.frozen(kw_only=True)
class UserProfile:
    """What the provider told the server about a user (``PUT /v1/users/{user_id}``)."""

    user_id: str
    segment: str | None
    value_tier: str | None
    updated_at: datetime


@attrs.frozen(kw_only=True)
class UserCompensation:
    """One token issued to a user, automatic (``reason`` episode/incident) or manual."""

    jti: str
    reason: str
    ref: str | None
    kind: str
    amount: int
    unit: str
    campaign: str
    alert_id: str
    issued_at: datetime | None
    expires_at: datetime
    redeemed: bool
