"""`DetectionSettings`: every number of the detection rules, as data.

The defaults are the rules of docs/detection.md; a policy file overrides them in its
``detection`` section (reference: docs/tokens.md, "Policy file"). Parsing is strict:
unknown fields and out-of-range values raise `PolicyError` naming the field.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .._model.enums import Severity
from .._model.errors import PolicyError
from .._tokens.spec import Compensation, check_compensation

__all__ = [
    "DEFAULT_CLIENT_STATUSES",
    "BurnRateSettings",
    "BurnWindow",
    "DetectionSettings",
    "EpisodeSettings",
    "IncidentSettings",
]

# Client-side 4xx: the user's situation (bad input, no rights, throttled), not our defect.
DEFAULT_CLIENT_STATUSES = frozenset({400, 401, 403, 404, 409, 422, 429})

_MINUTE = dt.timedelta(minutes=1)
_MAX_MINUTES = 7 * 24 * 60  # no window longer than a week
_MAX_COUNT = 1_000_000
_MAX_ENDPOINT_RULES = 10_000
_MAX_ENDPOINT_CHARS = 256
# The seed's "extra service time" for a severe outage: three more days of service.
_EXTRA_SERVICE = Compensation("service_credit", 3, "days")


@attrs.frozen
class EpisodeSettings:
    """Per-user persistence: ``min_failures`` failures of one user on one endpoint,
    spanning at least ``min_span`` and at most ``window``; the episode closes after
    ``close_after`` without a failure. ``severity`` grades its compensation."""

    min_failures: int = 3
    min_span: dt.timedelta = dt.timedelta(minutes=5)
    window: dt.timedelta = dt.timedelta(minutes=60)
    close_after: dt.timedelta = dt.timedelta(minutes=30)
    severity: Severity = Severity.MODERATE


@attrs.frozen
class BurnWindow:
    """One row of the multi-window burn-rate alert: both windows at >= ``factor``."""

    long: dt.timedelta
    short: dt.timedelta
    factor: float


@attrs.frozen
class BurnRateSettings:
    """Per-endpoint persistence against an SLO (the SRE workbook's multi-window rule).

    Any row of ``windows`` burning marks the endpoint degraded, provided the row's long
    window holds at least ``min_calls`` calls from ``min_users`` distinct users. While
    degraded (and for ``keep_degraded`` after the last burning evaluation), a user with
    ``episode_min_failures`` failures on it since the burn began has an episode.
    """

    slo: float = 0.999
    windows: tuple[BurnWindow, ...] = (
        BurnWindow(dt.timedelta(hours=1), dt.timedelta(minutes=5), 14.4),
        BurnWindow(dt.timedelta(hours=6), dt.timedelta(minutes=30), 6.0),
    )
    min_calls: int = 50
    min_users: int = 5
    episode_min_failures: int = 2
    keep_degraded: dt.timedelta = dt.timedelta(minutes=10)


@attrs.frozen
class IncidentSettings:
    """An endpoint failing at >= ``failure_ratio`` in every minute of ``min_duration``
    with >= ``min_calls`` calls in those minutes opens an incident; ``close_after`` of
    minutes below the ratio closes it. Graded by duration: shorter than
    ``moderate_after`` is minor, longer than ``severe_after`` is severe (and adds
    ``severe_extra``, extra service time, unless None). An episode detected while its
    endpoint is in a failing run is held up to ``hold_episodes`` for an incident to
    cover it.

    ``onset_min_failures``: a minute below the ratio counts as a run's first minute
    when at least that many failures came after its last success and the next minute
    is at the ratio (an outage that began mid-minute); 0 turns this off."""

    failure_ratio: float = 0.5
    min_duration: dt.timedelta = dt.timedelta(minutes=5)
    min_calls: int = 100
    close_after: dt.timedelta = dt.timedelta(minutes=10)
    moderate_after: dt.timedelta = dt.timedelta(minutes=30)
    severe_after: dt.timedelta = dt.timedelta(minutes=120)
    severe_extra: Compensation | None = _EXTRA_SERVICE
    hold_episodes: dt.timedelta = dt.timedelta(minutes=10)
    onset_min_failures: int = 3

    def grade(self, duration: dt.timedelta) -> Severity:
        """Minor below ``moderate_after``, severe above ``severe_after``, else moderate."""
        if duration > self.severe_after:
            return Severity.SEVERE
        if duration >= self.moderate_after:
            return Severity.MODERATE
        return Severity.MINOR


@attrs.frozen
class DetectionSettings:
    """All the numbers of detection (defaults: docs/detection.md).

    Attributes:
        client_statuses: statuses that never count as a failure (client-side 4xx).
        episode, burn_rate, incident: the three rules' settings.
        cooldown: at most one automatic compensation per user within this time.
        endpoint_severity: per-endpoint override of ``episode.severity``.
    """

    client_statuses: frozenset[int] = DEFAULT_CLIENT_STATUSES
    episode: EpisodeSettings = EpisodeSettings()
    burn_rate: BurnRateSettings = BurnRateSettings()
    incident: IncidentSettings = IncidentSettings()
    cooldown: dt.timedelta = dt.timedelta(hours=24)
    endpoint_severity: Mapping[str, Severity] = attrs.field(factory=lambda: MappingProxyType({}))

    @property
    def retention(self) -> dt.timedelta:
        """How far back the detector keeps per-minute state: its longest window."""
        longest = max(
            [w.long for w in self.burn_rate.windows]
            + [self.episode.window, self.incident.min_duration, _MINUTE]
        )
        return _ceil_minutes(longest)

    def severity_for(self, endpoint: str) -> Severity:
        return self.endpoint_severity.get(endpoint, self.episode.severity)

    @classmethod
    def from_mapping(cls, data: Any, path: str = "detection") -> DetectionSettings:
        """Parse a policy file's ``detection`` section (all fields optional).

        Raises:
            PolicyError: naming the first bad field, e.g. ``detection.episode.min_failures``.
        """
        top = _closed(
            data,
            path,
            {
                "client_statuses",
                "episode",
                "burn_rate",
                "incident",
                "cooldown_hours",
                "endpoint_severity",
            },
        )
        base = cls()
        statuses = base.client_statuses
        if "client_statuses" in top:
            raw = top["client_statuses"]
            if not isinstance(raw, list) or len(raw) > 100:
                raise PolicyError(f"{path}.client_statuses: must be a list of statuses")
            for i, status in enumerate(raw):
                if type(status) is not int or not 400 <= status <= 499:
                    raise PolicyError(f"{path}.client_statuses[{i}]: must be an int in 400-499")
            statuses = frozenset(raw)
        cooldown = _minutes(top, "cooldown_hours", base.cooldown, path, scale=60, allow_zero=True)
        return cls(
            client_statuses=statuses,
            episode=_episode(top.get("episode", {}), f"{path}.episode"),
            burn_rate=_burn_rate(top.get("burn_rate", {}), f"{path}.burn_rate"),
            incident=_incident(top.get("incident", {}), f"{path}.incident"),
            cooldown=cooldown,
            endpoint_severity=_endpoint_severity(
                top.get("endpoint_severity", {}), f"{path}.endpoint_severity"
            ),
        )


def _ceil_minutes(value: dt.timedelta) -> dt.timedelta:
    return _MINUTE * math.ceil(value / _MINUTE)


def _closed(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: must be a table/object")
    unknown = set(value) - allowed
    if unknown:
        raise PolicyError(f"{path}.{sorted(unknown)[0]}: unknown field")
    return value


def _number(value: Any, path: str, low: float, high: float, *, low_open: bool) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise PolicyError(f"{path}: must be a number")
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise PolicyError(f"{path}: must be a number in {bracket}{low:g}, {high:g}]")
    return float(value)


def _count(
    table: Mapping[str, Any], name: str, default: int, path: str, *, allow_zero: bool = False
) -> int:
    if name not in table:
        return default
    value = table[name]
    low = 0 if allow_zero else 1
    if type(value) is not int or not low <= value <= _MAX_COUNT:
        raise PolicyError(f"{path}.{name}: must be an integer in [{low}, {_MAX_COUNT}]")
    return value


def _minutes(
    table: Mapping[str, Any],
    name: str,
    default: dt.timedelta,
    path: str,
    *,
    scale: int = 1,
    allow_zero: bool = False,
) -> dt.timedelta:
    """A duration given in minutes (``scale=60``: in hours)."""
    if name not in table:
        return default
    value = _number(table[name], f"{path}.{name}", 0, _MAX_MINUTES / scale, low_open=not allow_zero)
    return dt.timedelta(minutes=value * scale)


def _episode(value: Any, path: str) -> EpisodeSettings:
    table = _closed(
        value,
        path,
        {"min_failures", "min_span_minutes", "window_minutes", "close_after_minutes", "severity"},
    )
    base = EpisodeSettings()
    settings = EpisodeSettings(
        min_failures=_count(table, "min_failures", base.min_failures, path),
        min_span=_minutes(table, "min_span_minutes", base.min_span, path, allow_zero=True),
        window=_minutes(table, "window_minutes", base.window, path),
        close_after=_minutes(table, "close_after_minutes", base.close_after, path),
        severity=_severity(table.get("severity", base.severity.value), f"{path}.severity"),
    )
    if settings.min_span > settings.window:
        raise PolicyError(f"{path}.min_span_minutes: must not exceed window_minutes")
    return settings


def _burn_rate(value: Any, path: str) -> BurnRateSettings:
    table = _closed(
        value,
        path,
        {
            "slo",
            "windows",
            "min_calls",
            "min_users",
            "episode_min_failures",
            "keep_degraded_minutes",
        },
    )
    base = BurnRateSettings()
    slo = base.slo
    if "slo" in table:
        slo = _number(table["slo"], f"{path}.slo", 0, 1, low_open=True)
        if slo >= 1:
            raise PolicyError(f"{path}.slo: must be below 1 (an SLO of 100% has no budget)")
    windows = base.windows
    if "windows" in table:
        raw = table["windows"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= 8:
            raise PolicyError(f"{path}.windows: must be a list of 1 to 8 windows")
        windows = tuple(_window(w, f"{path}.windows[{i}]") for i, w in enumerate(raw))
    return BurnRateSettings(
        slo=slo,
        windows=windows,
        min_calls=_count(table, "min_calls", base.min_calls, path),
        min_users=_count(table, "min_users", base.min_users, path),
        episode_min_failures=_count(table, "episode_min_failures", base.episode_min_failures, path),
        keep_degraded=_minutes(
            table, "keep_degraded_minutes", base.keep_degraded, path, allow_zero=True
        ),
    )


def _window(value: Any, path: str) -> BurnWindow:
    table = _closed(value, path, {"long_minutes", "short_minutes", "factor"})
    for name in ("long_minutes", "short_minutes", "factor"):
        if name not in table:
            raise PolicyError(f"{path}.{name}: missing")
    long = _minutes(table, "long_minutes", _MINUTE, path)
    short = _minutes(table, "short_minutes", _MINUTE, path)
    if long % _MINUTE or short % _MINUTE:
        raise PolicyError(f"{path}: windows are whole minutes")
    if short > long:
        raise PolicyError(f"{path}.short_minutes: must not exceed long_minutes")
    factor = _number(table["factor"], f"{path}.factor", 0, 1000, low_open=True)
    return BurnWindow(long, short, factor)


def _incident(value: Any, path: str) -> IncidentSettings:
    table = _closed(
        value,
        path,
        {
            "failure_ratio",
            "min_minutes",
            "min_calls",
            "close_after_minutes",
            "moderate_after_minutes",
            "severe_after_minutes",
            "severe_extra",
            "hold_episodes_minutes",
            "onset_min_failures",
        },
    )
    base = IncidentSettings()
    ratio = base.failure_ratio
    if "failure_ratio" in table:
        ratio = _number(table["failure_ratio"], f"{path}.failure_ratio", 0, 1, low_open=True)
    extra = base.severe_extra
    if "severe_extra" in table:
        raw = table["severe_extra"]
        if raw is False:
            extra = None
        else:
            try:
                extra = check_compensation(raw, PolicyError, f"{path}.severe_extra")
            except PolicyError as exc:
                raise PolicyError(str(exc).replace("claim ", "field ", 1)) from None
    settings = IncidentSettings(
        failure_ratio=ratio,
        min_duration=_minutes(table, "min_minutes", base.min_duration, path),
        min_calls=_count(table, "min_calls", base.min_calls, path),
        close_after=_minutes(table, "close_after_minutes", base.close_after, path),
        moderate_after=_minutes(table, "moderate_after_minutes", base.moderate_after, path),
        severe_after=_minutes(table, "severe_after_minutes", base.severe_after, path),
        severe_extra=extra,
        hold_episodes=_minutes(
            table, "hold_episodes_minutes", base.hold_episodes, path, allow_zero=True
        ),
        onset_min_failures=_count(
            table, "onset_min_failures", base.onset_min_failures, path, allow_zero=True
        ),
    )
    for name in ("min_duration", "close_after"):
        if getattr(settings, name) % _MINUTE:
            raise PolicyError(f"{path}: incidents are evaluated per minute; use whole minutes")
    if settings.severe_after < settings.moderate_after:
        raise PolicyError(f"{path}.severe_after_minutes: must not be below moderate_after_minutes")
    return settings


def _severity(value: Any, path: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise PolicyError(f"{path}: must be one of {[s.value for s in Severity]}") from None


def _endpoint_severity(value: Any, path: str) -> Mapping[str, Severity]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: must be a table/object")
    if len(value) > _MAX_ENDPOINT_RULES:
        raise PolicyError(f"{path}: at most {_MAX_ENDPOINT_RULES} entries")
    rules: dict[str, Severity] = {}
    for endpoint, severity in value.items():
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= _MAX_ENDPOINT_CHARS:
            raise PolicyError(f"{path}: endpoint names are 1-{_MAX_ENDPOINT_CHARS} characters")
        rules[endpoint] = _severity(severity, f"{path}.{endpoint}")
    return MappingProxyType(rules)
