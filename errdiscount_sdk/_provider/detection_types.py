"""The detector's input (`Observation`) and its typed outputs (the decisions).

Every decision is a frozen value stamped with the virtual time it was taken (``at``).
Ids are derived from the data (user, endpoint, start), never from a clock or a random
source, so replaying the same history yields the same ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypeAlias

import attrs

from .._model.enums import Severity
from .._model.errors import ConfigurationError
from .._tokens.spec import SEGMENTS, Compensation
from .detection_config import BurnWindow
from .policy import CompensationDecision

__all__ = [
    "ALL_ENDPOINTS",
    "CompensationDecided",
    "CompensationWithheld",
    "Decision",
    "EndpointDegraded",
    "EndpointRecovered",
    "EpisodeClosed",
    "EpisodeOpened",
    "IncidentClosed",
    "IncidentOpened",
    "Observation",
    "OpenEpisode",
    "OpenIncident",
]

# The scope of a manual incident that covers every endpoint.
ALL_ENDPOINTS = "*"
_MAX_NAME = 256
_MAX_COUNT = 1_000_000


def _utc(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dt.datetime) or value.utcoffset() != dt.timedelta(0):
        raise ConfigurationError(f"{attribute.name}: must be an aware UTC datetime")


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "user_id":
        return
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_NAME:
        raise ConfigurationError(f"{attribute.name}: must be a string of 1-{_MAX_NAME} characters")


def _count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or not 1 <= value <= _MAX_COUNT:
        raise ConfigurationError(f"count: must be an integer in [1, {_MAX_COUNT}]")


def _segment(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and value not in SEGMENTS:
        raise ConfigurationError(f"segment: must be one of {sorted(SEGMENTS)} or None")


@attrs.frozen(kw_only=True)
class Observation:
    """``count`` calls of one user on one endpoint at ``ts``, all failed or all not.

    A single event (``count=1``) or a per-minute aggregate (the server's rollups).
    An aggregate, or a success stamped at the start of its minute (a reporter's
    per-minute count), is taken to stand for calls anywhere in that minute (the
    incident onset rule, docs/detection.md). ``failed`` is already through
    `counts_as_failure`. ``user_id`` None: an anonymous call (it counts toward the
    endpoint's rates, never toward a compensation).

    Raises:
        ConfigurationError: a naive or non-UTC ``ts``, an empty endpoint, a count
            outside [1, 1000000], an unknown segment.
    """

    ts: dt.datetime = attrs.field(validator=_utc)
    user_id: str | None = attrs.field(validator=_name)
    endpoint: str = attrs.field(validator=_name)
    failed: bool
    count: int = attrs.field(default=1, validator=_count)
    segment: str | None = attrs.field(default=None, validator=_segment)


@attrs.frozen(kw_only=True)
class EpisodeOpened:
    """A user's failures on an endpoint became persistent (detection time ``at``).

    ``rule`` is ``"per_user"`` (min failures spanning min span within the window) or
    ``"burn_rate"`` (the relaxed rule while the endpoint is degraded).
    """

    episode_id: str
    user_id: str
    endpoint: str
    start: dt.datetime
    failures: int
    rule: Literal["per_user", "burn_rate"]
    at: dt.datetime


@attrs.frozen(kw_only=True)
class EpisodeClosed:
    """No failure for ``close_after``: the episode ended at its last failure ``end``."""

    episode_id: str
    user_id: str
    endpoint: str
    start: dt.datetime
    end: dt.datetime
    failures: int
    at: dt.datetime


@attrs.frozen(kw_only=True)
class EndpointDegraded:
    """The endpoint burns its error budget (``window`` is the row that fired)."""

    endpoint: str
    window: BurnWindow
    long_burn: float
    short_burn: float
    since: dt.datetime
    at: dt.datetime


@attrs.frozen(kw_only=True)
class EndpointRecovered:
    endpoint: str
    since: dt.datetime
    at: dt.datetime


@attrs.frozen(kw_only=True)
class IncidentOpened:
    """An incident began at ``start``; detected (or declared) at ``at``.

    ``scope``: the endpoints it covers; ``("*",)`` (`ALL_ENDPOINTS`) covers all.
    """

    incident_id: str
    scope: tuple[str, ...]
    start: dt.datetime
    manual: bool
    at: dt.datetime

    @property
    def endpoint(self) -> str:
        return ",".join(self.scope)


@attrs.frozen(kw_only=True)
class IncidentClosed:
    """An incident ended at ``end``; graded ``severity`` by its duration.

    ``affected_users``: every user with a call in scope between start and end.
    ``extra_service``: the extra service time a severe incident adds, else None.
    """

    incident_id: str
    scope: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    severity: Severity
    affected_users: frozenset[str]
    extra_service: Compensation | None
    manual: bool
    at: dt.datetime

    @property
    def endpoint(self) -> str:
        return ",".join(self.scope)


@attrs.frozen(kw_only=True)
class CompensationDecided:
    """Compensate ``user_id`` once for ``ref`` (an episode or incident id).

    ``decision`` is the `CompensationPolicy`'s grade x segment choice (priority and
    support flags included); ``extra_service`` is added for a severe incident.
    Exactly one per (user, episode) and per (user, incident).
    """

    user_id: str
    reason: Literal["episode", "incident"]
    ref: str
    severity: Severity
    decision: CompensationDecision
    extra_service: Compensation | None
    at: dt.datetime

    @property
    def compensation(self) -> Compensation:
        assert self.decision.compensation is not None  # decide_graded always compensates
        return self.decision.compensation


@attrs.frozen(kw_only=True)
class CompensationWithheld:
    """A compensation the rules owed but did not give, and why.

    ``why``: ``"cooldown"`` (the user was compensated within the cooldown) or
    ``"incident"`` (an episode covered by incident ``covered_by``, which compensates).
    """

    user_id: str
    reason: Literal["episode", "incident"]
    ref: str
    severity: Severity
    why: Literal["cooldown", "incident"]
    covered_by: str | None
    at: dt.datetime


Decision: TypeAlias = (
    EpisodeOpened
    | EpisodeClosed
    | EndpointDegraded
    | EndpointRecovered
    | IncidentOpened
    | IncidentClosed
    | CompensationDecided
    | CompensationWithheld
)


@attrs.frozen(kw_only=True)
class OpenEpisode:
    """An episode still open (for the admin API and the end of a backtest)."""

    episode_id: str
    user_id: str
    endpoint: str
    start: dt.datetime
    last_failure: dt.datetime
    failures: int


@attrs.frozen(kw_only=True)
class OpenIncident:
    """An incident still open; ``affected_users`` so far."""

    incident_id: str
    scope: tuple[str, ...]
    start: dt.datetime
    manual: bool
    affected_users: int
