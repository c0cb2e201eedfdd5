"""Detection: tell persistent failures from blips and decide automatic compensation.

Pure code: no I/O, no wall clock, no randomness. The server's detector loop and
``errdiscount backtest`` drive the same `Detector` with a virtual clock; the rules
and their defaults are in docs/detection.md, their numbers in `DetectionSettings`.

Evaluation granularity: calls are counted in whole UTC minutes. A minute is
*closed* (its bucket final and the endpoint rules evaluated on it) as soon as the
clock reaches the next minute, by `Detector.feed` or `Detector.advance`. The
per-user episode rule is evaluated on every failure, to the microsecond.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from .._model.enums import ErrorCategory, Severity
from .._model.errors import ConfigurationError
from .._tokens.spec import Compensation
from .detection_config import DEFAULT_CLIENT_STATUSES, DetectionSettings
from .detection_types import (
    ALL_ENDPOINTS,
    CompensationDecided,
    CompensationWithheld,
    Decision,
    EndpointDegraded,
    EndpointRecovered,
    EpisodeClosed,
    EpisodeOpened,
    IncidentClosed,
    IncidentOpened,
    Observation,
    OpenEpisode,
    OpenIncident,
)
from .policy import CompensationPolicy

__all__ = ["Detector", "counts_as_failure", "episode_id", "incident_id"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)
_MIN = 60_000_000  # microseconds per minute
_MAX_SCOPE = 1000
_NO_DECISIONS: Sequence[Decision] = ()


def counts_as_failure(
    category: ErrorCategory | str | None,
    status: int | None,
    *,
    client_statuses: frozenset[int] = DEFAULT_CLIENT_STATUSES,
) -> bool:
    """Whether a call's final outcome (after retries) is a failure we owe for.

    - ``network``: always (no usable exchange happened);
    - ``protocol``: a status >= 500, or none (the exchange broke);
    - ``data_format``: yes (the response could not be read), unless its status is a
      client-side 4xx (the request was malformed: the caller's doing);
    - ``business``, and any status in ``client_statuses`` (400 401 403 404 409 422
      429 by default): never — the user's situation, not our defect.

    ``category`` None (a successful call) is not a failure.
    """
    if status is not None and status in client_statuses:
        return False
    if category == ErrorCategory.NETWORK:
        return True
    if category == ErrorCategory.PROTOCOL:
        return status is None or status >= 500
    return category == ErrorCategory.DATA_FORMAT


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


def episode_id(user_id: str, endpoint: str, start: dt.datetime) -> str:
    """The deterministic id of the episode of ``user_id`` on ``endpoint`` from ``start``."""
    return "ep_" + _digest(user_id, endpoint, str(_to_us(start)))


def incident_id(scope: Iterable[str], start: dt.datetime, *, manual: bool = False) -> str:
    """The deterministic id of the incident on ``scope`` from ``start``."""
    kind = "manual" if manual else "auto"
    return "inc_" + _digest(kind, ",".join(sorted(scope)), str(_to_us(start)))


def _to_us(ts: dt.datetime) -> int:
    return (ts - _EPOCH) // _ONE_US


def _to_dt(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


class _Episode:
    __slots__ = ("failures", "id", "last_us", "settled", "start_us")

    def __init__(self, ident: str, start_us: int, last_us: int, failures: int) -> None:
        self.id = ident
        self.start_us = start_us
        self.last_us = last_us
        self.failures = failures
        self.settled = False  # its compensation was decided or withheld


class _Series:
    """One (endpoint, user): recent calls as a minute bitmask, recent failures."""

    __slots__ = ("base", "episode", "fail_total", "fails", "last_us", "mask", "segment", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.last_us = 0
        self.base = 0  # bit k of mask: a call in minute (base - k)
        self.mask = 0
        self.fails: deque[tuple[int, int]] = deque()  # (us, count), not yet in an episode
        self.fail_total = 0
        self.episode: _Episode | None = None
        self.segment: str | None = None

    def called_between(self, first_min: int, last_min: int) -> bool:
        high = self.base - first_min
        low = max(0, self.base - last_min)
        if high < low or high < 0:
            return False
        return (self.mask >> low) & ((1 << (high - low + 1)) - 1) != 0


class _Incident:
    __slots__ = (
        "affected",
        "detected_us",
        "end_us",
        "id",
        "manual",
        "scope",
        "severity",
        "start_us",
    )

    def __init__(
        self,
        ident: str,
        scope: tuple[str, ...],
        start_us: int,
        detected_us: int,
        *,
        manual: bool,
        end_us: int | None = None,
        severity: Severity | None = None,
    ) -> None:
        self.id = ident
        self.scope = scope
        self.start_us = start_us
        self.detected_us = detected_us
        self.manual = manual
        self.end_us = end_us  # a manual incident's declared end
        self.severity = severity  # a manual incident's declared severity
        self.affected: dict[str, tuple[int, str | None]] = {}  # user -> (first call, segment)

    def covers(self, endpoint: str) -> bool:
        return self.scope == (ALL_ENDPOINTS,) or endpoint in self.scope

    def add(self, user: str, us: int, segment: str | None) -> None:
        if user not in self.affected:
            self.affected[user] = (us, segment)


class _Endpoint:
    __slots__ = (
        "burn_since_us",
        "cur_calls",
        "cur_fails",
        "cur_first_fail",
        "cur_last_fail",
        "cur_last_ok",
        "cur_min",
        "degraded",
        "good_len",
        "held",
        "incident",
        "last_burn_min",
        "name",
        "onset_first_fail",
        "onset_min",
        "ring_calls",
        "ring_fails",
        "ring_min",
        "run_last_fail",
        "run_len",
        "run_start",
        "series",
        "sum_calls",
        "sum_fails",
    )

    def __init__(self, name: str, ring: int, windows: int) -> None:
        self.name = name
        self.series: OrderedDict[str, _Series] = OrderedDict()  # least recently called first
        self.cur_min = -1
        self.cur_calls = 0
        self.cur_fails = 0
        self.cur_first_fail = 0  # first and last failure of the current minute (µs)
        self.cur_last_fail = 0
        # The current minute's last success (µs); an aggregate, or a success stamped
        # at the minute's start (how reporters stamp their per-minute counts), may
        # stand for calls anywhere in it: then the minute's end.
        self.cur_last_ok = 0
        self.ring_min = [-1] * ring
        self.ring_calls = [0] * ring
        self.ring_fails = [0] * ring
        self.sum_calls = [0] * windows
        self.sum_fails = [0] * windows
        self.run_len = 0  # consecutive closed minutes at or above the incident ratio
        self.run_start = 0  # the run's first failure (µs)
        self.run_last_fail = 0  # the last failure of its last bad minute (µs)
        self.good_len = 0  # consecutive closed minutes below it
        self.onset_min = -1  # the last closed minute, if an outage may have begun in it
        self.onset_first_fail = 0  # its first failure (µs)
        self.incident: _Incident | None = None
        self.degraded = False
        self.burn_since_us = 0
        self.last_burn_min = 0
        self.held: list[tuple[_Series, _Episode, int]] = []  # episodes awaiting an incident

    def idle(self) -> bool:
        return (
            not any(self.sum_calls)
            and self.cur_min < 0
            and not self.series
            and self.incident is None
            and not self.degraded
            and not self.held
        )


class Detector:
    """The incremental detection engine (rules: docs/detection.md).

    Feed `Observation` records in non-decreasing ``ts`` order with `feed`; move the
    virtual clock with `advance` (the server calls it on every detector run, with the
    wall-clock time; the backtest with the last event's time). Both return the
    decisions taken, in time order. Memory is bounded by the longest window
    (`DetectionSettings.retention`) and the cooldown, not by the history.

    Args:
        policy: decides grade x segment; its ``detection`` section gives the settings.
        settings: overrides ``policy.detection``.
        profiles: user id -> segment (the server's user profiles); wins over an
            observation's ``segment``.
    """

    def __init__(
        self,
        policy: CompensationPolicy | None = None,
        *,
        settings: DetectionSettings | None = None,
        profiles: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy or CompensationPolicy.default()
        self.settings = settings or self.policy.detection
        self._profiles: Mapping[str, str] = profiles or {}
        s = self.settings
        self._ring = s.retention // dt.timedelta(minutes=1)
        self._retention_us = self._ring * _MIN
        lengths = sorted(
            {w.long // dt.timedelta(minutes=1) for w in s.burn_rate.windows}
            | {w.short // dt.timedelta(minutes=1) for w in s.burn_rate.windows}
            | {s.incident.min_duration // dt.timedelta(minutes=1)}
        )
        self._lengths = lengths
        index = {length: i for i, length in enumerate(lengths)}
        budget = 1 - s.burn_rate.slo
        # Per row: (long index, short index, long minutes, error-rate threshold, row).
        self._rows = [
            (
                index[w.long // dt.timedelta(minutes=1)],
                index[w.short // dt.timedelta(minutes=1)],
                w.long // dt.timedelta(minutes=1),
                w.factor * budget,
                w,
            )
            for w in s.burn_rate.windows
        ]
        self._budget = budget
        self._inc_index = index[s.incident.min_duration // dt.timedelta(minutes=1)]
        self._inc_minutes = s.incident.min_duration // dt.timedelta(minutes=1)
        self._close_minutes = s.incident.close_after // dt.timedelta(minutes=1)
        self._keep_minutes = -(-s.burn_rate.keep_degraded // dt.timedelta(minutes=1))
        self._window_us = s.episode.window // _ONE_US
        self._span_us = s.episode.min_span // _ONE_US
        self._close_us = s.episode.close_after // _ONE_US
        self._hold_us = s.incident.hold_episodes // _ONE_US
        self._cooldown_us = s.cooldown // _ONE_US
        self._ring_mask = (1 << self._ring) - 1

        self._now = -(2**62)  # the virtual clock, µs since the epoch
        self._closed: int | None = None  # the last closed minute
        self._endpoints: dict[str, _Endpoint] = {}
        self._manual: dict[str, _Incident] = {}
        self._timers: list[tuple[int, int, int, str, str]] = []  # (due, seq, kind, key, key2)
        self._seq = 0
        self._last_comp: dict[str, int] = {}
        self._comp_order: deque[tuple[int, str]] = deque()
        self._out: list[Decision] = []

    # -- the clock --------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime | None:
        """The virtual clock (None before the first observation or advance)."""
        return None if self._closed is None else _to_dt(self._now)

    def feed(self, observation: Observation) -> Sequence[Decision]:
        """Apply one observation; the clock moves to its ``ts`` first.

        Raises:
            ConfigurationError: ``ts`` is earlier than the clock (input out of order).
        """
        o = observation
        return self._feed(_to_us(o.ts), o.user_id, o.endpoint, o.failed, o.count, o.segment)

    def advance(self, now: dt.datetime) -> Sequence[Decision]:
        """Move the virtual clock to ``now``: close minutes, episodes and incidents due.

        Raises:
            ConfigurationError: ``now`` is earlier than the clock.
        """
        self._advance(self._checked_us(now))
        return self._drain()

    def _checked_us(self, ts: object) -> int:
        if not isinstance(ts, dt.datetime) or ts.utcoffset() != dt.timedelta(0):
            raise ConfigurationError("time: must be an aware UTC datetime")
        return _to_us(ts)

    def _drain(self) -> Sequence[Decision]:
        if not self._out:
            return _NO_DECISIONS
        out, self._out = self._out, []
        return out

    def _advance(self, us: int) -> None:
        if us < self._now:
            raise ConfigurationError(
                f"ts {_to_dt(us).isoformat()} is before the detector's clock "
                f"{_to_dt(self._now).isoformat()}: observations must come in time order"
            )
        if self._closed is None:
            self._closed = us // _MIN - 1
        target_min = us // _MIN - 1  # the last minute that is over at `us`
        timers = self._timers
        while True:
            next_close = (self._closed + 2) * _MIN if self._closed < target_min else None
            if timers and timers[0][0] <= us and (next_close is None or timers[0][0] <= next_close):
                self._now = max(self._now, timers[0][0])
                self._fire(heapq.heappop(timers))
            elif next_close is not None:
                self._now = max(self._now, next_close)
                self._close_minute(self._closed + 1)
                self._closed += 1
            else:
                break
        self._now = us
        cooldown = self._cooldown_us
        order = self._comp_order
        while order and order[0][0] <= us - cooldown:
            at, user = order.popleft()
            if self._last_comp.get(user) == at:
                del self._last_comp[user]

    def _push(self, due: int, kind: int, key: str, key2: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, key, key2))

    # -- observations -----------------------------------------------------------------

    def _feed(
        self,
        us: int,
        user: str | None,
        endpoint: str,
        failed: bool,
        count: int,
        segment: str | None,
    ) -> Sequence[Decision]:
        if (
            us < self._now
            or self._closed is None
            or us // _MIN - 1 > self._closed
            or (self._timers and self._timers[0][0] <= us)
        ):
            self._advance(us)  # closes what is due (or raises: out of order)
        else:
            self._now = us
        e = self._endpoints.get(endpoint)
        if e is None:
            e = self._endpoints[endpoint] = _Endpoint(endpoint, self._ring, len(self._lengths))
        minute = us // _MIN
        if e.cur_min != minute:
            e.cur_min = minute
            e.cur_calls = 0
            e.cur_fails = 0
            e.cur_last_ok = 0
        e.cur_calls += count
        if failed:
            if not e.cur_fails:
                e.cur_first_fail = us
            e.cur_last_fail = us
            e.cur_fails += count
        elif count == 1 and us % _MIN:
            if e.cur_last_ok < us:
                e.cur_last_ok = us
        else:
            e.cur_last_ok = (minute + 1) * _MIN
        if user is None:
            return self._drain()
        s = e.series.get(user)
        if s is None:
            s = e.series[user] = _Series(user)
        else:
            e.series.move_to_end(user)
        s.last_us = us
        shift = minute - s.base
        if shift:
            s.mask = ((s.mask << shift) | 1) & self._ring_mask if shift < self._ring else 1
            s.base = minute
        else:
            s.mask |= 1
        if segment is not None:
            s.segment = segment
        if e.incident is not None:
            e.incident.add(user, us, self._segment(s))
        for incident in self._manual.values():
            if incident.start_us <= us and incident.covers(endpoint):
                incident.add(user, us, self._segment(s))
        if failed:
            self._failure(e, s, us, count)
        return self._drain()

    def _segment(self, s: _Series) -> str | None:
        return self._profiles.get(s.user) or s.segment

    def _failure(self, e: _Endpoint, s: _Series, us: int, count: int) -> None:
        ep = s.episode
        if ep is not None:
            ep.last_us = us
            ep.failures += count
            return
        fails = s.fails
        fails.append((us, count))
        s.fail_total += count
        oldest = us - self._window_us
        while fails[0][0] < oldest:
            s.fail_total -= fails.popleft()[1]
        episode = self.settings.episode
        if s.fail_total >= episode.min_failures and us - fails[0][0] >= self._span_us:
            self._open_episode(e, s, fails[0][0], s.fail_total, "per_user")
        elif e.degraded:
            self._burn_episode(e, s)

    def _burn_episode(self, e: _Endpoint, s: _Series) -> None:
        since = e.burn_since_us
        recent = [(t, c) for t, c in s.fails if t >= since]
        total = sum(c for _, c in recent)
        if recent and total >= self.settings.burn_rate.episode_min_failures:
            self._open_episode(e, s, recent[0][0], total, "burn_rate")

    def _open_episode(
        self,
        e: _Endpoint,
        s: _Series,
        start_us: int,
        failures: int,
        rule: Literal["per_user", "burn_rate"],
    ) -> None:
        last_us = s.fails[-1][0]
        ident = "ep_" + _digest(s.user, e.name, str(start_us))
        ep = s.episode = _Episode(ident, start_us, last_us, failures)
        s.fails.clear()
        s.fail_total = 0
        self._out.append(
            EpisodeOpened(
                episode_id=ident,
                user_id=s.user,
                endpoint=e.name,
                start=_to_dt(start_us),
                failures=failures,
                rule=rule,
                at=_to_dt(self._now),
            )
        )
        self._push(last_us + self._close_us, 0, e.name, s.user)
        covering = self._covering(e)
        if covering is not None:
            self._withhold_covered(s, e, ep, covering)
        elif self._hold_us and self._may_become_incident(e):
            e.held.append((s, ep, self._now))
        else:
            self._settle_episode(e, s, ep)

    def _covering(self, e: _Endpoint) -> _Incident | None:
        if e.incident is not None:
            return e.incident
        for incident in self._manual.values():
            if incident.covers(e.name) and incident.start_us <= self._now:
                return incident
        return None

    def _may_become_incident(self, e: _Endpoint) -> bool:
        """In a failing run (the last closed minute, or this one so far, at or above the
        incident ratio) with traffic enough for an incident: at least one minute's share
        of ``min_calls`` in the incident window and this minute."""
        rules = self.settings.incident
        current = e.cur_calls if e.cur_min == self._now // _MIN else 0
        if not (e.run_len or (current and e.cur_fails >= rules.failure_ratio * current)):
            return False
        return (e.sum_calls[self._inc_index] + current) * self._inc_minutes >= rules.min_calls

    def _withhold_covered(self, s: _Series, e: _Endpoint, ep: _Episode, by: _Incident) -> None:
        ep.settled = True
        self._out.append(
            CompensationWithheld(
                user_id=s.user,
                reason="episode",
                ref=ep.id,
                severity=self.settings.severity_for(e.name),
                why="incident",
                covered_by=by.id,
                at=_to_dt(self._now),
            )
        )

    def _settle_episode(self, e: _Endpoint, s: _Series, ep: _Episode) -> None:
        ep.settled = True
        self._compensate(
            s.user, "episode", ep.id, self.settings.severity_for(e.name), self._segment(s), None
        )

    def _compensate(
        self,
        user: str,
        reason: Literal["episode", "incident"],
        ref: str,
        severity: Severity,
        segment: str | None,
        extra: Compensation | None,
    ) -> None:
        at = _to_dt(self._now)
        last = self._last_comp.get(user)
        if self._cooldown_us and last is not None and self._now - last < self._cooldown_us:
            self._out.append(
                CompensationWithheld(
                    user_id=user,
                    reason=reason,
                    ref=ref,
                    severity=severity,
                    why="cooldown",
                    covered_by=None,
                    at=at,
                )
            )
            return
        self._note(user, self._now)
        decision = self.policy.decide_graded(severity, segment=segment)
        self._out.append(
            CompensationDecided(
                user_id=user,
                reason=reason,
                ref=ref,
                severity=severity,
                decision=decision,
                extra_service=extra,
                at=at,
            )
        )

    def _note(self, user: str, us: int) -> None:
        if self._cooldown_us:
            self._last_comp[user] = us
            self._comp_order.append((us, user))

    def note_compensated(self, user_id: str, at: dt.datetime) -> None:
        """Record a compensation given elsewhere (e.g. the ledger, at start-up), so
        that the cooldown counts it."""
        us = self._checked_us(at)
        if us > self._last_comp.get(user_id, -(2**62)):
            self._last_comp[user_id] = us
            # The eviction queue must stay in time order; an older note is kept in
            # place, harmlessly (eviction checks the stored time).
            if not self._comp_order or self._comp_order[-1][0] <= us:
                self._comp_order.append((us, user_id))
            else:
                self._comp_order.appendleft((us, user_id))

    # -- timers -----------------------------------------------------------------------

    def _fire(self, timer: tuple[int, int, int, str, str]) -> None:
        due, _, kind, key, key2 = timer
        if kind == 0:
            e = self._endpoints.get(key)
            s = None if e is None else e.series.get(key2)
            ep = None if s is None else s.episode
            if e is None or s is None or ep is None:
                return
            actual = ep.last_us + self._close_us
            if actual > due:
                self._push(actual, 0, key, key2)
                return
            s.episode = None
            self._out.append(
                EpisodeClosed(
                    episode_id=ep.id,
                    user_id=s.user,
                    endpoint=e.name,
                    start=_to_dt(ep.start_us),
                    end=_to_dt(ep.last_us),
                    failures=ep.failures,
                    at=_to_dt(due),
                )
            )
        else:
            incident = self._manual.get(key)
            if incident is not None and incident.end_us == due:
                self._close_manual(incident, due)

    # -- per-minute endpoint rules ----------------------------------------------------

    def _close_minute(self, m: int) -> None:
        idle: list[str] = []
        for e in self._endpoints.values():
            self._close_endpoint_minute(e, m)
            if e.idle():
                idle.append(e.name)
        for name in idle:
            del self._endpoints[name]

    def _close_endpoint_minute(self, e: _Endpoint, m: int) -> None:
        first_fail, last_fail = e.cur_first_fail, e.cur_last_fail
        if e.cur_min == m:
            calls, fails, last_ok = e.cur_calls, e.cur_fails, e.cur_last_ok
            e.cur_min, e.cur_calls, e.cur_fails = -1, 0, 0
        else:
            calls = fails = last_ok = 0
        ring = self._ring
        sum_calls, sum_fails = e.sum_calls, e.sum_fails
        ring_min, ring_calls, ring_fails = e.ring_min, e.ring_calls, e.ring_fails
        for i, length in enumerate(self._lengths):
            old = m - length
            j = old % ring
            if ring_min[j] == old:
                sum_calls[i] -= ring_calls[j]
                sum_fails[i] -= ring_fails[j]
            sum_calls[i] += calls
            sum_fails[i] += fails
        j = m % ring
        ring_min[j], ring_calls[j], ring_fails[j] = m, calls, fails
        end_us = (m + 1) * _MIN
        self._evict(e, end_us)
        if calls or e.degraded or any(sum_calls):
            self._burn(e, m, end_us)
        self._incident_rule(e, m, calls, fails, first_fail, last_fail, last_ok, end_us)
        if e.held:
            self._release_held(e)

    def _evict(self, e: _Endpoint, end_us: int) -> None:
        horizon = end_us - self._retention_us
        series = e.series
        while series:
            s = next(iter(series.values()))
            if s.last_us >= horizon or s.episode is not None:
                break
            series.popitem(last=False)

    def _users_since(self, e: _Endpoint, since_us: int, enough: int) -> int:
        seen = 0
        for s in reversed(e.series.values()):
            if s.last_us < since_us:
                break
            seen += 1
            if seen >= enough:
                break
        return seen

    def _burn(self, e: _Endpoint, m: int, end_us: int) -> None:
        burn = self.settings.burn_rate
        fired = None
        for long_i, short_i, long_minutes, threshold, row in self._rows:
            long_calls = e.sum_calls[long_i]
            short_calls = e.sum_calls[short_i]
            if (
                long_calls >= burn.min_calls
                and short_calls
                and e.sum_fails[long_i] >= threshold * long_calls
                and e.sum_fails[short_i] >= threshold * short_calls
                and self._users_since(e, end_us - long_minutes * _MIN, burn.min_users)
                >= burn.min_users
            ):
                fired = (long_i, short_i, row)
                break
        if fired is not None:
            e.last_burn_min = m
            if not e.degraded:
                long_i, short_i, row = fired
                e.degraded = True
                e.burn_since_us = end_us - row.short // _ONE_US
                self._out.append(
                    EndpointDegraded(
                        endpoint=e.name,
                        window=row,
                        long_burn=e.sum_fails[long_i] / e.sum_calls[long_i] / self._budget,
                        short_burn=e.sum_fails[short_i] / e.sum_calls[short_i] / self._budget,
                        since=_to_dt(e.burn_since_us),
                        at=_to_dt(end_us),
                    )
                )
                for s in list(e.series.values()):
                    if s.episode is None and s.fails:
                        self._burn_episode(e, s)
        elif e.degraded and m - e.last_burn_min >= self._keep_minutes:
            e.degraded = False
            self._out.append(
                EndpointRecovered(endpoint=e.name, since=_to_dt(e.burn_since_us), at=_to_dt(end_us))
            )

    def _incident_rule(
        self,
        e: _Endpoint,
        m: int,
        calls: int,
        fails: int,
        first_fail: int,
        last_fail: int,
        last_ok: int,
        end_us: int,
    ) -> None:
        """Per closed minute: a run of bad minutes opens an incident, which begins at
        the run's first failure; a quiet streak closes it, ending at the last failure
        of its last bad minute (so affected users are those who called while it
        failed, not merely in the same minute).

        Onset: a minute below the ratio whose failures (at least
        ``onset_min_failures``) all came after its last success, right before a run
        (the minute before it was not bad), is where an outage began mid-minute. It
        counts only if the next minute is bad: then the run starts with it, at its
        first failure. A blip at the end of a healthy minute, or a dip inside a
        flapping run, gains nothing."""
        rules = self.settings.incident
        bad = calls > 0 and fails >= rules.failure_ratio * calls
        if bad:
            if e.run_len == 0:
                e.run_start = first_fail
                if e.onset_min == m - 1:
                    e.run_start = e.onset_first_fail
                    e.run_len = 1
            e.run_len += 1
            e.run_last_fail = last_fail
            e.good_len = 0
        else:
            onset = rules.onset_min_failures
            if onset and e.run_len == 0 and fails >= onset and first_fail > last_ok:
                e.onset_min, e.onset_first_fail = m, first_fail
            e.run_len = 0
            e.good_len += 1
        incident = e.incident
        if incident is None:
            if (
                bad
                and e.run_len >= self._inc_minutes
                and e.sum_calls[self._inc_index] >= rules.min_calls
            ):
                self._open_auto(e, e.run_start, end_us)
        elif not bad and e.good_len >= self._close_minutes:
            e.incident = None
            self._close(incident, e.run_last_fail, end_us)

    def _open_auto(self, e: _Endpoint, start_us: int, at_us: int) -> None:
        ident = "inc_" + _digest("auto", e.name, str(start_us))
        incident = e.incident = _Incident(ident, (e.name,), start_us, at_us, manual=False)
        for s in reversed(e.series.values()):
            if s.last_us < start_us:
                break
            incident.add(s.user, start_us, self._segment(s))
        self._out.append(
            IncidentOpened(
                incident_id=ident,
                scope=incident.scope,
                start=_to_dt(start_us),
                manual=False,
                at=_to_dt(at_us),
            )
        )

    def _release_held(self, e: _Endpoint) -> None:
        covering = self._covering(e)
        keep: list[tuple[_Series, _Episode, int]] = []
        for s, ep, held_at in e.held:
            if covering is not None:
                self._withhold_covered(s, e, ep, covering)
            elif e.run_len == 0 or self._now - held_at >= self._hold_us:
                self._settle_episode(e, s, ep)
            else:
                keep.append((s, ep, held_at))
        e.held = keep

    def _close(self, incident: _Incident, end_us: int, at_us: int) -> None:
        rules = self.settings.incident
        duration = dt.timedelta(microseconds=end_us - incident.start_us)
        severity = incident.severity or rules.grade(duration)
        extra = rules.severe_extra if severity is Severity.SEVERE else None
        affected = sorted(u for u, (first, _) in incident.affected.items() if first <= end_us)
        self._out.append(
            IncidentClosed(
                incident_id=incident.id,
                scope=incident.scope,
                start=_to_dt(incident.start_us),
                end=_to_dt(end_us),
                severity=severity,
                affected_users=frozenset(affected),
                extra_service=extra,
                manual=incident.manual,
                at=_to_dt(at_us),
            )
        )
        for user in affected:
            segment = self._profiles.get(user) or incident.affected[user][1]
            self._compensate(user, "incident", incident.id, severity, segment, extra)

    # -- manual incidents -------------------------------------------------------------

    def declare_incident(
        self,
        scope: Sequence[str] | str,
        start: dt.datetime,
        end: dt.datetime | None = None,
        *,
        incident_id: str | None = None,
        severity: Severity | str | None = None,
    ) -> Sequence[Decision]:
        """An operator's incident on ``scope`` (endpoints, or ``"all"``/``"*"``).

        ``start`` may be in the past: the users with a call in scope since then are
        found from the per-minute call masks, to the minute, as far back as
        `DetectionSettings.retention`. With ``end`` at or before the clock it closes at
        once; a later ``end`` closes it then; without one, `close_incident` does.
        ``severity`` None grades it by duration like any incident. The id defaults to
        `incident_id` (scope, start). It is declared at the current clock.

        Raises:
            ConfigurationError: empty or oversized scope, end before start, an id
                already open, an unknown severity.
        """
        if isinstance(scope, str):
            scope = [scope]
        names = tuple(sorted(set(scope)))
        if any(n in ("all", ALL_ENDPOINTS) for n in names):
            names = (ALL_ENDPOINTS,)
        if not names or len(names) > _MAX_SCOPE or any(not n or len(n) > 256 for n in names):
            raise ConfigurationError(f"scope: 1-{_MAX_SCOPE} endpoint names, or 'all'")
        start_us = self._checked_us(start)
        end_us = None if end is None else self._checked_us(end)
        if end_us is not None and end_us < start_us:
            raise ConfigurationError("end: must not be before start")
        try:
            grade = None if severity is None else Severity(severity)
        except ValueError:
            raise ConfigurationError(f"severity: unknown value {severity!r}") from None
        if self._closed is None:
            self._advance(start_us)
        ident = incident_id or "inc_" + _digest("manual", ",".join(names), str(start_us))
        if ident in self._manual:
            raise ConfigurationError(f"incident {ident}: already open")
        incident = _Incident(
            ident, names, start_us, self._now, manual=True, end_us=end_us, severity=grade
        )
        first_min = start_us // _MIN
        last_min = (self._now if end_us is None else min(end_us, self._now)) // _MIN
        for e in self._endpoints.values() if start_us <= self._now else ():
            if incident.covers(e.name):
                for s in e.series.values():
                    if s.called_between(first_min, last_min):
                        incident.add(s.user, start_us, self._segment(s))
        self._out.append(
            IncidentOpened(
                incident_id=ident,
                scope=names,
                start=_to_dt(start_us),
                manual=True,
                at=_to_dt(self._now),
            )
        )
        if end_us is not None and end_us <= self._now:
            self._close(incident, end_us, max(self._now, end_us))
        else:
            self._manual[ident] = incident
            if end_us is not None:
                self._push(end_us, 1, ident, "")
        return self._drain()

    def close_incident(self, incident_id: str, at: dt.datetime) -> Sequence[Decision]:
        """Close an open incident (manual or automatic) at ``at``; the clock moves there.

        Raises:
            ConfigurationError: no open incident has that id.
        """
        self._advance(self._checked_us(at))
        if incident_id in self._manual:
            self._close_manual(self._manual[incident_id], self._now)
            return self._drain()
        for e in self._endpoints.values():
            if e.incident is not None and e.incident.id == incident_id:
                incident, e.incident = e.incident, None
                e.run_len = 0  # a new incident needs a new failing run
                self._close(incident, max(self._now, incident.start_us), self._now)
                return self._drain()
        raise ConfigurationError(f"incident {incident_id}: not open")

    def _close_manual(self, incident: _Incident, end_us: int) -> None:
        del self._manual[incident.id]
        self._close(incident, max(end_us, incident.start_us), self._now)

    # -- snapshots --------------------------------------------------------------------

    def degraded_endpoints(self) -> Mapping[str, dt.datetime]:
        """Endpoints burning their error budget now -> since when."""
        return {n: _to_dt(e.burn_since_us) for n, e in self._endpoints.items() if e.degraded}

    def open_episodes(self) -> list[OpenEpisode]:
        return [
            OpenEpisode(
                episode_id=s.episode.id,
                user_id=s.user,
                endpoint=e.name,
                start=_to_dt(s.episode.start_us),
                last_failure=_to_dt(s.episode.last_us),
                failures=s.episode.failures,
            )
            for e in self._endpoints.values()
            for s in e.series.values()
            if s.episode is not None
        ]

    def open_incidents(self) -> list[OpenIncident]:
        incidents = [e.incident for e in self._endpoints.values() if e.incident is not None]
        incidents += self._manual.values()
        return [
            OpenIncident(
                incident_id=i.id,
                scope=i.scope,
                start=_to_dt(i.start_us),
                manual=i.manual,
                affected_users=len(i.affected),
            )
            for i in incidents
        ]

    def active_series(self) -> int:
        """How many (endpoint, user) series the detector holds (its memory)."""
        return sum(len(e.series) for e in self._endpoints.values())
