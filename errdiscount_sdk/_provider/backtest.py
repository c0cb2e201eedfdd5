"""The backtest: replay a file of events through the `Detector`, with a virtual clock.

The same engine as the server's detector loop, fed one event at a time; the clock is
the events' own ``ts``. Streaming: memory holds the detector's windows and the
report (episodes, incidents, compensations), never the events.

Bad lines are skipped and reported (`BacktestResult.skipped`, with the first
`MAX_REPORTED_SKIPS` reasons), never fatal: an export of millions of events should
not be lost to one torn line. A line whose ``ts`` is earlier than the previous
event's is skipped the same way (the detector needs time order).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._model.errors import ConfigurationError
from .._tokens.spec import Compensation
from .detection import Detector
from .detection_events import InvalidEvent, from_event_line
from .detection_types import (
    CompensationDecided,
    CompensationWithheld,
    Decision,
    EpisodeClosed,
    IncidentClosed,
    OpenEpisode,
    OpenIncident,
)
from .policy import CompensationPolicy

__all__ = ["MAX_REPORTED_SKIPS", "BacktestResult", "run_backtest"]

MAX_REPORTED_SKIPS = 20
_PROGRESS_EVERY = 1 << 14


@attrs.frozen(kw_only=True)
class BacktestResult:
    """What would have happened.

    Attributes:
        events: lines read as call events (other kinds and blank lines excluded).
        first, last: the time span of those events (None when there were none).
        episodes: closed episodes, then those still open at the end of the input.
        incidents: closed incidents, then those still open.
        compensations: every compensation decided, in time order.
        withheld: compensations owed but not given, by why (``cooldown``, ``incident``).
        skipped: how many lines were skipped; ``skip_reasons`` the first of them.
    """

    events: int
    first: dt.datetime | None
    last: dt.datetime | None
    episodes: tuple[EpisodeClosed | OpenEpisode, ...]
    incidents: tuple[IncidentClosed | OpenIncident, ...]
    compensations: tuple[CompensationDecided, ...]
    withheld: Mapping[str, int]
    skipped: int
    skip_reasons: tuple[InvalidEvent, ...]

    def cost(self) -> dict[str, dict[str, int | float]]:
        """Total amount per compensation kind and unit (extra service time included)."""
        totals: dict[str, dict[str, int | float]] = {}
        for decided in self.compensations:
            for comp in (decided.compensation, decided.extra_service):
                if comp is not None:
                    units = totals.setdefault(comp.kind, {})
                    units[comp.unit] = _round(units.get(comp.unit, 0) + comp.amount)
        return {kind: dict(sorted(units.items())) for kind, units in sorted(totals.items())}

    def to_json(self) -> dict[str, Any]:
        """The ``errdiscount backtest --json`` object (docs/detection.md, "Backtest")."""
        return {
            "episodes": [_episode_json(e) for e in self.episodes],
            "incidents": [_incident_json(i) for i in self.incidents],
            "compensations": [_compensation_json(c) for c in self.compensations],
            "cost": self.cost(),
        }


def _round(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def _iso(ts: dt.datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def _comp_json(comp: Compensation | None) -> dict[str, Any] | None:
    return None if comp is None else comp.to_claim()


def _episode_json(e: EpisodeClosed | OpenEpisode) -> dict[str, Any]:
    return {
        "id": e.episode_id,
        "user_id": e.user_id,
        "endpoint": e.endpoint,
        "start": _iso(e.start),
        "end": _iso(e.end) if isinstance(e, EpisodeClosed) else None,
        "failures": e.failures,
    }


def _incident_json(i: IncidentClosed | OpenIncident) -> dict[str, Any]:
    closed = i if isinstance(i, IncidentClosed) else None
    return {
        "id": i.incident_id,
        "endpoint": ",".join(i.scope),
        "start": _iso(i.start),
        "end": None if closed is None else _iso(closed.end),
        "severity": None if closed is None else closed.severity.value,
        "affected_users": (
            len(i.affected_users) if isinstance(i, IncidentClosed) else i.affected_users
        ),
        "manual": i.manual,
    }


def _compensation_json(c: CompensationDecided) -> dict[str, Any]:
    return {
        "user_id": c.user_id,
        "reason": c.reason,
        "ref": c.ref,
        "severity": c.severity.value,
        "compensation": c.compensation.to_claim(),
        "extra_service": _comp_json(c.extra_service),
        "at": _iso(c.at),
    }


def run_backtest(
    lines: Iterable[bytes | str],
    *,
    policy: CompensationPolicy | None = None,
    profiles: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay JSON lines (one event each, docs/events.md) and report the decisions.

    ``progress`` is called every few thousand lines with the bytes read so far.
    """
    detector = Detector(policy, profiles=profiles)
    statuses = detector.settings.client_statuses
    episodes: list[EpisodeClosed | OpenEpisode] = []
    incidents: list[IncidentClosed | OpenIncident] = []
    compensations: list[CompensationDecided] = []
    withheld: Counter[str] = Counter()
    reasons: list[InvalidEvent] = []
    skipped = events = read = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def collect(decisions: Iterable[Decision]) -> None:
        for d in decisions:
            if isinstance(d, CompensationDecided):
                compensations.append(d)
            elif isinstance(d, EpisodeClosed):
                episodes.append(d)
            elif isinstance(d, IncidentClosed):
                incidents.append(d)
            elif isinstance(d, CompensationWithheld):
                withheld[d.why] += 1

    for number, text in enumerate(lines, 1):
        read += len(text)
        if progress is not None and not number % _PROGRESS_EVERY:
            progress(read)
        if not text.strip():
            continue
        try:
            observation = from_event_line(text, client_statuses=statuses, line=number)
            if observation is None:
                continue
            decisions = detector.feed(observation)
        except InvalidEvent as exc:
            skipped += 1
            if len(reasons) < MAX_REPORTED_SKIPS:
                reasons.append(exc)
            continue
        except ConfigurationError as exc:  # out of time order
            skipped += 1
            if len(reasons) < MAX_REPORTED_SKIPS:
                reasons.append(InvalidEvent(str(exc), number))
            continue
        events += 1
        if first is None:
            first = observation.ts
        last = observation.ts
        if decisions:
            collect(decisions)
    if progress is not None:
        progress(read)
    episodes.extend(detector.open_episodes())
    incidents.extend(detector.open_incidents())
    return BacktestResult(
        events=events,
        first=first,
        last=last,
        episodes=tuple(episodes),
        incidents=tuple(incidents),
        compensations=tuple(compensations),
        withheld=dict(sorted(withheld.items())),
        skipped=skipped,
        skip_reasons=tuple(reasons),
    )
