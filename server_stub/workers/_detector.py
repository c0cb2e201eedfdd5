"""The detector worker: persistent failures and incidents from the stored call events,
and automatic compensation (docs/detection.md, "In the server").

Every ``--detector-interval`` seconds (default 30) one replica runs `DetectorWorker.run_once`:

1. It takes the detector lock (`Store.try_exclusive`: ``pg_try_advisory_lock`` on
   PostgreSQL, a file lock on SQLite). A replica that does not get it skips the run:
   exactly one evaluates at a time.
2. **State is rebuilt, not kept**: a fresh `Detector` replays the stored ``call``
   events of the lookback window (the detector's retention, 6 h at the defaults),
   moved earlier so that it never cuts a recorded episode or incident in two
   (`Store.replay_anchor`, at most `MAX_REPLAY` back), with the manual incidents
   and close requests re-applied at their times. The cooldown is seeded from the
   compensations issued before (`Detector.note_compensated`). Replaying the same
   history gives the same ids (``ep_…``, ``inc_…``), so every replica, and a restarted
   server, derives the same decisions; late events are taken into account; nothing
   lives only in one process's memory. The cost is a read of the window's events per
   run (rejected alternative: in-memory state per replica, which diverges between
   replicas and is lost on restart).
3. Episodes, incidents (with their ledger rows) and the degraded endpoints are
   recorded in one transaction; each compensation decision in one transaction of its
   own (`Store.record_auto_compensation`: the (user, reason, ref) row, the issued
   tokens and their ledger rows). The unique key makes issuance exactly-once across
   runs, restarts and replicas; decisions already recorded are not minted again.

``--auto-compensate``: ``off`` records episodes and incidents only; ``dry-run`` (the
default) records each decision with status ``dry_run`` and issues nothing; ``on``
issues. A decision recorded in dry-run stays a dry-run record (switching to ``on``
compensates decisions taken from then on, not the backlog). Budgets: a decision whose
token a budget cannot cover is recorded ``refused`` (high-priority users go first in
a run). A compensation withheld by the rules (cooldown, covered by an incident) is
recorded ``withheld`` with why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from errdiscount_sdk import (
    CompensationPolicy,
    ConfigurationError,
    TokenError,
    TokenIssuer,
)
from errdiscount_sdk.detection import (
    CompensationDecided,
    CompensationWithheld,
    Decision,
    Detector,
    EpisodeClosed,
    EpisodeOpened,
    IncidentClosed,
    IncidentOpened,
    Observation,
    counts_as_failure,
)
from server_stub.store import (
    AutoCompensation,
    AutoRecorded,
    CallObservation,
    EpisodeRecord,
    IncidentRecord,
    IssuedToken,
    Store,
    StoreError,
)

from ..domain._render import store_amount
from ..domain._trust import TokenGate
from ..domain._vouchers import mint_voucher

__all__ = [
    "DETECTOR_LOCK",
    "MAX_REPLAY",
    "AutoCompensate",
    "DetectorWorker",
    "RunReport",
]

log = logging.getLogger("server_stub.detector")

#: the advisory-lock key of the detector ("errddet\0")
DETECTOR_LOCK: Final = 0x65727264_64657400
#: how far back a replay may reach to keep a long episode or incident whole
MAX_REPLAY: Final = dt.timedelta(hours=48)
_PAGE = 10_000
_MAX_COUNT = 1_000_000
#: the claims of automatic vouchers (the token needs an error code and a category)
_ERROR_CODES = {"episode": "PERSISTENT_FAILURE", "incident": "INCIDENT"}
_CATEGORY = "protocol"


class AutoCompensate(enum.StrEnum):
    """``--auto-compensate``."""

    OFF = "off"
    DRY_RUN = "dry-run"
    ON = "on"


@attrs.frozen(kw_only=True)
class RunReport:
    """What one run did. ``ran`` False: another replica held the lock (nothing done)."""

    ran: bool
    now: dt.datetime
    replay_from: dt.datetime | None = None
    events: int = 0
    episodes: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    issued: int = 0
    dry_run: int = 0
    refused: int = 0
    withheld: int = 0
    already_recorded: int = 0


@attrs.frozen
class _Replay:
    start: dt.datetime
    events: int
    decisions: list[Decision]
    detector: Detector
    known: set[tuple[str, str, str]]


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DetectorWorker:
    """Runs the detector over the store; `run_once` is one pass (tests call it directly).

    Args:
        store: the server's store.
        policy: the compensation policy (its ``detection`` section gives the rules).
        issuer, gate: sign and read back automatic vouchers (as ``POST /v1/tokens``).
        mode: `AutoCompensate`.
        public_base: base URL of alert links (``--public-url``).
        clock: "now" of a run when none is given.
    """

    def __init__(
        self,
        store: Store,
        policy: CompensationPolicy,
        issuer: TokenIssuer,
        gate: TokenGate,
        *,
        mode: AutoCompensate = AutoCompensate.DRY_RUN,
        public_base: str = "http://localhost",
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.policy = policy
        self.issuer = issuer
        self.gate = gate
        self.mode = AutoCompensate(mode)
        self.public_base = public_base
        self.clock = clock
        self.settings = policy.detection

    # -- one run ------------------------------------------------------------------------

    async def run_once(self, now: dt.datetime | None = None) -> RunReport:
        """One detector pass as of ``now`` (default: the clock), if the lock is free.

        Raises:
            StoreError: the database failed (the next run starts over; what was
                committed stays, exactly once).
        """
        moment = now or self.clock()
        lock = self.store.try_exclusive(DETECTOR_LOCK)
        got = await asyncio.to_thread(lock.__enter__)
        try:
            if not got:
                return RunReport(ran=False, now=moment)
            return await self._run(moment)
        finally:
            await asyncio.to_thread(lock.__exit__, None, None, None)

    async def _run(self, now: dt.datetime) -> RunReport:
        replay = await asyncio.to_thread(self._replay, now)
        episodes, opened, closed = self._records(replay)
        degraded = list(replay.detector.degraded_endpoints().items())
        new_open, new_closed = await asyncio.to_thread(
            lambda: self.store.record_detection(
                episodes=episodes, opened=opened, closed=closed, degraded=degraded
            )
        )
        counts = {"issued": 0, "dry_run": 0, "refused": 0, "withheld": 0, "already": 0}
        if self.mode is not AutoCompensate.OFF:
            await self._compensate(replay, counts)
        report = RunReport(
            ran=True,
            now=now,
            replay_from=replay.start,
            events=replay.events,
            episodes=len(episodes),
            incidents_opened=new_open,
            incidents_closed=new_closed,
            issued=counts["issued"],
            dry_run=counts["dry_run"],
            refused=counts["refused"],
            withheld=counts["withheld"],
            already_recorded=counts["already"],
        )
        if new_open or new_closed or counts["issued"] or counts["dry_run"] or counts["refused"]:
            log.info(
                "detector: %d incidents opened, %d closed; compensations: %d issued,"
                " %d dry-run, %d refused, %d withheld",
                new_open,
                new_closed,
                counts["issued"],
                counts["dry_run"],
                counts["refused"],
                counts["withheld"],
            )
        return report

    def _replay(self, now: dt.datetime) -> _Replay:
        """Rebuild the detector's state from the stored events (a worker thread)."""
        s = self.settings
        start = self.store.replay_anchor(_minute(now - s.retention), floor=now - MAX_REPLAY)
        issued, known, profiles, incidents = self.store.detection_context(
            issued_since=start - s.cooldown,
            known_since=start - s.cooldown,
            incidents_since=start,
        )
        detector = Detector(self.policy, profiles=profiles)
        for user, at in sorted(issued, key=lambda pair: pair[1]):
            detector.note_compensated(user, at)
        actions = self._actions(incidents, start, now)
        decisions: list[Decision] = []
        events = 0
        after: tuple[dt.datetime, str] | None = None
        clients = s.client_statuses
        while True:
            page = self.store.call_observations(start, now, after=after, limit=_PAGE)
            for row in page:
                while actions and actions[0][0] <= row.ts:
                    decisions.extend(self._apply(detector, actions.pop(0)))
                failed = row.outcome == "error" and counts_as_failure(
                    row.category, row.status, client_statuses=clients
                )
                decisions.extend(detector.feed(self._observation(row.ts, row, failed)))
                events += 1
            if len(page) < _PAGE:
                break
            after = (page[-1].ts, page[-1].event_id)
        for action in actions:
            decisions.extend(self._apply(detector, action))
        decisions.extend(detector.advance(max(now, detector.now or now)))
        return _Replay(start, events, decisions, detector, known)

    @staticmethod
    def _observation(ts: dt.datetime, row: CallObservation, failed: bool) -> Observation:
        count = min(row.count, _MAX_COUNT)
        try:
            return Observation(
                ts=ts, user_id=row.user_id, endpoint=row.endpoint, failed=failed, count=count,
                segment=row.segment,
            )  # fmt: skip
        except ConfigurationError:  # a free-form segment the rules do not know
            return Observation(
                ts=ts, user_id=row.user_id, endpoint=row.endpoint, failed=failed, count=count
            )

    @staticmethod
    def _actions(
        incidents: Sequence[IncidentRecord], start: dt.datetime, now: dt.datetime
    ) -> list[tuple[dt.datetime, str, IncidentRecord]]:
        """Manual incidents (declared at their declaration time, or the replay's start)
        and close requests, in time order."""
        actions: list[tuple[dt.datetime, str, IncidentRecord]] = []
        for incident in incidents:
            if incident.manual:
                actions.append((min(max(incident.declared_at, start), now), "declare", incident))
            if incident.close_requested_at is not None and not (
                incident.manual and incident.end is not None
            ):
                at = min(max(incident.close_requested_at, start), now)
                actions.append((at, "close", incident))
        actions.sort(key=lambda action: (action[0], action[1] != "declare"))
        return actions

    @staticmethod
    def _apply(
        detector: Detector, action: tuple[dt.datetime, str, IncidentRecord]
    ) -> list[Decision]:
        at, what, incident = action
        out: list[Decision] = []
        try:
            if detector.now is None or at > detector.now:
                out.extend(detector.advance(at))
            if what == "declare":
                out.extend(
                    detector.declare_incident(
                        list(incident.scope), incident.start, incident.end,
                        incident_id=incident.id,
                    )
                )  # fmt: skip
            else:
                out.extend(detector.close_incident(incident.id, at))
        except ConfigurationError:
            # Not open (any more) in this replay, or already declared: nothing to do.
            log.debug("detector: incident %s: %s skipped", incident.id, what)
        return out

    def _records(
        self, replay: _Replay
    ) -> tuple[
        list[EpisodeRecord],
        list[IncidentRecord],
        list[tuple[str, dt.datetime, str, int, dt.datetime]],
    ]:
        episodes: dict[str, EpisodeRecord] = {}
        opened: list[IncidentRecord] = []
        closed: list[tuple[str, dt.datetime, str, int, dt.datetime]] = []
        for d in replay.decisions:
            if isinstance(d, EpisodeOpened):
                episodes[d.episode_id] = EpisodeRecord(
                    id=d.episode_id, user_id=d.user_id, endpoint=d.endpoint, start=d.start,
                    end=None, failures=d.failures, rule=d.rule, state="open", detected_at=d.at,
                )  # fmt: skip
            elif isinstance(d, EpisodeClosed):
                known = episodes.get(d.episode_id)
                episodes[d.episode_id] = EpisodeRecord(
                    id=d.episode_id, user_id=d.user_id, endpoint=d.endpoint, start=d.start,
                    end=d.end, failures=d.failures,
                    rule=known.rule if known else "per_user", state="closed",
                    detected_at=known.detected_at if known else d.at,
                )  # fmt: skip
            elif isinstance(d, IncidentOpened):
                opened.append(
                    IncidentRecord(
                        id=d.incident_id, scope=d.scope, start=d.start, end=None, severity=None,
                        manual=d.manual, state="open", affected_users=None, declared_at=d.at,
                    )
                )  # fmt: skip
            elif isinstance(d, IncidentClosed):
                closed.append((d.incident_id, d.end, d.severity.value, len(d.affected_users), d.at))
        for open_episode in replay.detector.open_episodes():
            known = episodes.get(open_episode.episode_id)
            if known is not None:
                episodes[open_episode.episode_id] = attrs.evolve(
                    known, failures=open_episode.failures
                )
        return list(episodes.values()), opened, closed

    # -- compensations -----------------------------------------------------------------

    async def _compensate(self, replay: _Replay, counts: dict[str, int]) -> None:
        wanted: list[CompensationDecided | CompensationWithheld] = []
        for d in replay.decisions:
            if isinstance(d, CompensationDecided | CompensationWithheld):
                if (d.user_id, d.reason, d.ref) in replay.known:
                    counts["already"] += 1
                    continue
                replay.known.add((d.user_id, d.reason, d.ref))
                wanted.append(d)
        # High-priority users (the policy's high-value segment) first: a budget that
        # runs out mid-run refuses the others.
        wanted.sort(key=lambda d: not (isinstance(d, CompensationDecided) and d.decision.priority))
        for d in wanted:
            row, tokens = await self._prepare(d)
            outcome = await asyncio.to_thread(self.store.record_auto_compensation, row, tokens)
            if isinstance(outcome, AutoRecorded):
                status = outcome.compensation.status
                counts[status] += 1
            else:
                counts["already"] += 1

    async def _prepare(
        self, d: CompensationDecided | CompensationWithheld
    ) -> tuple[AutoCompensation, list[IssuedToken]]:
        if isinstance(d, CompensationWithheld):
            return (
                AutoCompensation(
                    user_id=d.user_id, reason=d.reason, ref=d.ref, status="withheld", why=d.why,
                    severity=d.severity.value, kind="-", amount=0, unit="-", decided_at=d.at,
                    detail={"covered_by": d.covered_by} if d.covered_by else {},
                ),
                [],
            )  # fmt: skip
        amount, unit = store_amount(d.compensation)
        detail: dict[str, object] = {
            "segment": d.decision.segment,
            "priority": d.decision.priority,
            "support_flag": d.decision.support_flag,
        }
        if d.extra_service is not None:
            extra_amount, extra_unit = store_amount(d.extra_service)
            detail["extra_service"] = {
                "kind": d.extra_service.kind, "amount": extra_amount, "unit": extra_unit,
            }  # fmt: skip
        base = AutoCompensation(
            user_id=d.user_id, reason=d.reason, ref=d.ref, status="dry_run", why=None,
            severity=d.severity.value, kind=d.compensation.kind, amount=amount, unit=unit,
            decided_at=d.at, detail=detail,
        )  # fmt: skip
        if self.mode is not AutoCompensate.ON:
            return base, []
        tokens: list[IssuedToken] = []
        try:
            for compensation in (d.compensation, d.extra_service):
                if compensation is None:
                    continue
                voucher = await mint_voucher(
                    self.issuer,
                    self.gate,
                    public_base=self.public_base,
                    subject=d.user_id,
                    error_code=_ERROR_CODES[d.reason],
                    category=_CATEGORY,
                    severity=d.severity.value,
                    compensation=compensation,
                    ttl=d.decision.ttl,
                    segment=d.decision.segment,
                    incident=d.ref if d.reason == "incident" else None,
                )
                tokens.append(voucher.record)
        except (ConfigurationError, TokenError) as exc:
            log.warning("detector: cannot mint a voucher for %s %s: %s", d.reason, d.ref, exc)
            return attrs.evolve(base, status="refused", why="cannot mint the voucher"), []
        return attrs.evolve(base, status="issued"), tokens

    # -- the loop ------------------------------------------------------------------------

    async def run_forever(self, interval: float) -> None:
        """Run every ``interval`` seconds until cancelled; a failed run is logged and
        the next one starts over."""
        while True:
            try:
                await self.run_once()
            except StoreError:
                log.warning("detector run failed; retrying next round", exc_info=True)
            await asyncio.sleep(interval)
