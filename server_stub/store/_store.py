"""`Store`: the one interface the server uses, over either back end; `open_store`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from errdiscount_sdk import ConfigurationError

from . import _admin, _detection, _events, _idempotency, _outcomes, _pg_batch, _redeem, _reports
from ._base import (
    MAX_CODE,
    MAX_CODES_PER_LOAD,
    MAX_ID,
    MAX_NAME,
    MAX_PAGE,
    MAX_REASON,
    MAX_SHORT,
    MAX_TOKEN,
    Dialect,
    Tx,
    check_amount,
    check_text,
    from_us,
    to_us,
)
from ._detection_models import (
    AUTO_STATUSES,
    AutoCompensation,
    AutoOutcome,
    CallObservation,
    EpisodeRecord,
    IncidentRecord,
    UserCompensation,
    UserProfile,
)
from ._errors import StoreInputError
from ._event_models import (
    DEFAULT_DAILY_ROLLUP_RETENTION,
    EventRecord,
    IngestResult,
    OutcomeRecord,
    PruneResult,
    RollupGroup,
    RollupRow,
    RollupSpan,
    SeriesBucket,
    StoredEvent,
    UserMinute,
)
from ._migrations import LATEST_VERSION, installed_by, migrate, pending_migrations, schema_version
from ._models import (
    Budget,
    CodeLoad,
    CodePool,
    Compensations,
    IdempotencyOutcome,
    InFlight,
    IssuedToken,
    KeyedOutcome,
    KeyedRedemption,
    LedgerPage,
    Mismatch,
    New,
    RedeemOutcome,
    Redemption,
    RedemptionRequest,
    Replay,
    ResponseRenderer,
    ReverseOutcome,
    UserCap,
)
from ._pg_functions import (
    CHARGE_BUDGETS_FUNCTION,
    COMPLETE_BATCH_FUNCTION,
    REDEEM_BATCH_FUNCTION,
)
from ._rows import REDEMPTION_COLUMNS, check_request, redemption
from ._store_funnel import FunnelMixin
from ._store_outbox import OutboxMixin

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store(OutboxMixin, FunnelMixin):
    """Exactly-once redemption, budgets, inventory, caps, idempotency and the ledger.

    Thread-safe: share one instance between the server's worker threads. Every method
    is one transaction. Business results are returned as typed values; `StoreError`
    means the database failed (nothing was committed), `StoreInputError` means an
    argument was out of range (nothing was attempted).

    ``render`` is how keyed redemptions are remembered: the response it gives for an
    outcome is stored under the key in the redemption's transaction (see
    `ResponseRenderer`). Without one, keyed redemptions are refused.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        clock: Clock = _utcnow,
        idempotency_ttl: timedelta = timedelta(hours=24),
        idempotency_lock_timeout: timedelta = timedelta(seconds=60),
        apply_migrations: bool = True,
        render: ResponseRenderer | None = None,
    ) -> None:
        self._dialect = dialect
        self._clock = clock
        self._render = render
        self._ttl = int(idempotency_ttl / timedelta(microseconds=1))
        self._lock_timeout = int(idempotency_lock_timeout / timedelta(microseconds=1))
        self.schema = migrate(dialect) if apply_migrations else pending_migrations(dialect)[0]
        # PostgreSQL runs keyed redemptions in its server-side functions (migration 5),
        # and unkeyed ones too once the function that takes them is installed.
        self._pipelined = (
            dialect
            if isinstance(dialect, _pg_batch.PipelinedDialect)
            and self.schema >= (installed_by(COMPLETE_BATCH_FUNCTION) or LATEST_VERSION + 1)
            else None
        )
        self._unkeyed_in_database = self._pipelined is not None and self.schema >= (
            installed_by(REDEEM_BATCH_FUNCTION) or LATEST_VERSION + 1
        )
        # ... and charges each budget once per batch, last, once migration 12 has run.
        self._budget_per_batch = self._pipelined is not None and self.schema >= (
            installed_by(CHARGE_BUDGETS_FUNCTION) or LATEST_VERSION + 1
        )

    @property
    def can_run_now(self) -> bool:
        """True if ``wait=False`` can succeed (SQLite); False: it always raises WouldBlock."""
        return self._dialect.runs_now

    @property
    def max_connections(self) -> int | None:
        """Connections the store opens at most (PostgreSQL's pool); None: not pooled."""
        size = getattr(self._dialect, "max_connections", None)
        return size if isinstance(size, int) else None

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect.name

    def _now(self) -> int:
        return to_us(self._clock())

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return schema_version(self._dialect)

    def pending_migrations(self) -> list[tuple[int, str]]:
        """``(version, description)`` of the migrations not applied yet (a read)."""
        return [(m.version, m.description) for m in pending_migrations(self._dialect)[1]]

    def close(self) -> None:
        self._dialect.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- redemption ---------------------------------------------------------------

    def redeem(
        self,
        request: RedemptionRequest,
        *,
        claim: New | None = None,
        wait: bool = True,
    ) -> RedeemOutcome:
        """Redeem ``request.jti`` exactly once, in one transaction.

        On PostgreSQL, without a claim and once the batch function takes unkeyed items
        (its migration applied), this is one call of that function (a batch of one).

        Args:
            request: the verified token's claims.
            claim: the idempotency claim from `begin_idempotent`, if the request had a key;
                the store's renderer's response for the outcome is stored under it in the
                same transaction, so a retry replays exactly it.
            wait: False: raise `WouldBlock` rather than wait for the write lock.

        Raises:
            StoreInputError: a value is out of range.
            ConfigurationError: a claim, but the store was opened without ``render``.
            WouldBlock: ``wait=False`` and the lock was taken; nothing was attempted.
            IdempotencyKeyLost: the claim was taken over (lock timeout); nothing committed.
            StoreError: the database failed; nothing was committed.
        """
        check_request(request)
        if claim is None and wait and self._unkeyed_in_database:  # (never runs now)
            outcome = self._redeem_in_database([request], self._now(), None)[0]
            assert not isinstance(outcome, Replay | InFlight | Mismatch)  # unkeyed: never
            return outcome
        render = self._renderer() if claim is not None else None
        now = self._now()
        redemption_id = _redeem.new_redemption_id(now)
        run = self._dialect.run if wait else self._dialect.run_now
        return run(
            lambda tx: _redeem.redeem(
                tx, request, redemption_id=redemption_id, now=now, claim=claim, render=render
            ),
            write=True,
        )

    def _renderer(self) -> ResponseRenderer:
        if self._render is None:
            raise ConfigurationError("keyed redemptions need a store opened with render=")
        return self._render

    def redeem_idempotent(
        self,
        request: RedemptionRequest,
        *,
        scope: str,
        key: str,
        fingerprint: str,
        wait: bool = True,
    ) -> RedeemOutcome | Replay | InFlight | Mismatch:
        """`begin_idempotent` and `redeem` in one transaction (one commit, not two).

        Returns the idempotency result (`Replay`, `InFlight`, `Mismatch`: nothing was
        redeemed) or, when the key was free (or expired, or taken over), the outcome of
        the redemption, whose rendering (the store's ``render``) is stored under the key.
        ``wait=False``: raise `WouldBlock` rather than wait for the write lock (for
        event-loop callers; `can_run_now`).

        Raises:
            StoreInputError: a value is out of range.
            WouldBlock: ``wait=False`` and the lock was taken; nothing was attempted.
            StoreError: the database failed; nothing was committed (not even the claim).
        """
        check_request(request)
        _idempotency.check_begin(scope, key, fingerprint)
        render = self._renderer()
        now = self._now()
        item = KeyedRedemption(request, scope, key, fingerprint)
        if self._in_database:
            return self._redeem_in_database([item], now, render)[0]
        run = self._dialect.run if wait else self._dialect.run_now
        return run(lambda tx: self._redeem_keyed(tx, item, now, render), write=True)

    def redeem_idempotent_batch(
        self, items: Sequence[KeyedRedemption | RedemptionRequest], *, wait: bool = True
    ) -> list[KeyedOutcome | StoreInputError]:
        """Several `redeem_idempotent` calls, in order, in one transaction (group commit).

        An item without a key (a bare `RedemptionRequest`) is a `redeem` call instead.
        Each item is exactly what `redeem_idempotent` (or `redeem`) would do, run one after another
        under the same write lock, so a later item sees the earlier ones (a repeated
        jti is `AlreadyRedeemed`, a repeated key is replayed). Only the commit, and
        its fsync, is shared. The caller must not report any item done before this
        returns: then all of them are durable, or (on an exception) none.

        Returns one entry per item: its outcome, or the `StoreInputError` that kept
        it out of the transaction (the other items are unaffected).

        Raises:
            WouldBlock: ``wait=False`` and the lock was taken; nothing was attempted.
            StoreError: the database failed; nothing of any item was committed.
        """
        keyed = any(isinstance(item, KeyedRedemption) for item in items)
        render = self._renderer() if keyed else None
        refused: dict[int, StoreInputError] = {}
        valid: list[KeyedRedemption | RedemptionRequest] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, KeyedRedemption):
                    check_request(item.request)
                    _idempotency.check_begin(item.scope, item.key, item.fingerprint)
                else:
                    check_request(item)
            except StoreInputError as exc:
                refused[index] = exc
                continue
            valid.append(item)
        outcomes: list[KeyedOutcome] = []
        in_database = self._in_database and (
            self._unkeyed_in_database or all(isinstance(i, KeyedRedemption) for i in valid)
        )
        if valid and in_database:
            if len(valid) > _pg_batch.MAX_PG_BATCH:
                raise StoreInputError(f"at most {_pg_batch.MAX_PG_BATCH} items per batch")
            outcomes = self._redeem_in_database(valid, self._now(), render)
        elif valid:
            now = self._now()
            run = self._dialect.run if wait else self._dialect.run_now
            outcomes = run(
                lambda tx: [self._redeem_one(tx, item, now, render) for item in valid],
                write=True,
            )
        done = iter(outcomes)
        return [refused[index] if index in refused else next(done) for index in range(len(items))]

    @property
    def _in_database(self) -> bool:
        return self._pipelined is not None

    def _redeem_in_database(
        self,
        items: Sequence[KeyedRedemption | RedemptionRequest],
        now: int,
        render: ResponseRenderer | None,
    ) -> list[KeyedOutcome]:
        assert self._pipelined is not None
        return _pg_batch.redeem_batch(
            self._pipelined,
            items,
            now=now,
            ttl=self._ttl,
            lock_timeout=self._lock_timeout,
            render=render,
            budget_per_batch=self._budget_per_batch,
        )

    def _redeem_one(
        self,
        tx: Tx,
        item: KeyedRedemption | RedemptionRequest,
        now: int,
        render: ResponseRenderer | None,
    ) -> KeyedOutcome:
        if isinstance(item, KeyedRedemption):
            assert render is not None  # a batch with a keyed item has the renderer
            return self._redeem_keyed(tx, item, now, render)
        redemption_id = _redeem.new_redemption_id(now)
        return _redeem.redeem(
            tx, item, redemption_id=redemption_id, now=now, claim=None, render=None
        )

    def _redeem_keyed(
        self, tx: Tx, item: KeyedRedemption, now: int, render: ResponseRenderer
    ) -> KeyedOutcome:
        claim = _idempotency.begin(
            tx,
            item.scope,
            item.key,
            item.fingerprint,
            now=now,
            ttl=self._ttl,
            lock_timeout=self._lock_timeout,
        )
        if not isinstance(claim, New):
            return claim
        return _redeem.redeem(
            tx,
            item.request,
            redemption_id=_redeem.new_redemption_id(now),
            now=now,
            claim=claim,
            render=render,
        )

    def redemption(self, redemption_id: str) -> Redemption | None:
        """The redemption with that id, or None."""
        return self._find("id", check_text("redemption id", redemption_id, MAX_ID))

    def redemption_by_jti(self, jti: str) -> Redemption | None:
        """The redemption of that token id, or None."""
        return self._find("jti", check_text("jti", jti, MAX_ID))

    def _find(self, column: str, value: str) -> Redemption | None:
        sql = f"SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE {column} = :value"  # noqa: S608
        row = self._dialect.run(lambda tx: tx.one(sql, {"value": value}), write=False)
        return None if row is None else redemption(row)

    def reverse(
        self, redemption_id: str, reason: str, *, actor: str | None = None
    ) -> ReverseOutcome:
        """Roll a redemption back without deleting anything (see docs/redemption.md).

        Returns `Reversed`, `AlreadyReversed` (nothing changed) or `RedemptionNotFound`.
        ``actor`` (the admin key's name) is recorded on the ``reversed`` ledger row.
        """
        check_text("redemption id", redemption_id, MAX_ID)
        check_text("reason", reason, MAX_REASON)
        actor = _actor(actor)
        now = self._now()
        return self._dialect.run(
            lambda tx: _redeem.reverse(tx, redemption_id, reason, now=now, actor=actor),
            write=True,
        )

    # -- idempotency --------------------------------------------------------------

    def begin_idempotent(self, scope: str, key: str, fingerprint: str) -> IdempotencyOutcome:
        """Claim (scope, key) for a request with that fingerprint, or say why not.

        Returns `New` (run the request, then complete or abandon), `Replay` (send the
        stored response), `InFlight` (409) or `Mismatch` (422).
        """
        _idempotency.check_begin(scope, key, fingerprint)
        now = self._now()
        return self._dialect.run(
            lambda tx: _idempotency.begin(
                tx,
                scope,
                key,
                fingerprint,
                now=now,
                ttl=self._ttl,
                lock_timeout=self._lock_timeout,
            ),
            write=True,
        )

    def stored_response(self, scope: str, key: str, fingerprint: str) -> Replay | None:
        """The response stored under (scope, key) for this fingerprint, if it completed.

        Read-only (claims nothing): None when the key is unknown, in flight, expired or
        was used with another fingerprint. For answering a retry whose request can no
        longer be checked (its token expired) with what the first attempt answered.
        """
        _idempotency.check_begin(scope, key, fingerprint)
        now = self._now()
        return self._dialect.run(
            lambda tx: _idempotency.lookup(tx, scope, key, fingerprint, now=now), write=False
        )

    def complete_idempotent(self, claim: New, status: int, body: bytes) -> None:
        """Store the response of a claimed request (for requests other than `redeem`).

        Raises:
            IdempotencyKeyLost: the claim was taken over after its lock timeout.
        """
        _idempotency.check_response(status, body)
        now = self._now()
        self._dialect.run(
            lambda tx: _idempotency.complete(tx, claim, status, body, now=now), write=True
        )

    def abandon_idempotent(self, claim: New) -> bool:
        """Release a claim without a stored response (e.g. the request was invalid)."""
        return self._dialect.run(lambda tx: _idempotency.abandon(tx, claim), write=True)

    def purge_idempotency(self) -> int:
        """Delete expired idempotency records; returns how many."""
        now = self._now()
        return self._dialect.run(lambda tx: _idempotency.purge(tx, now=now), write=True)

    # -- budgets, inventory, caps -------------------------------------------------

    def set_budget(
        self, kind: str, campaign: str, total: int, *, unit: str, actor: str | None = None
    ) -> Budget:
        """Create or resize the budget of (kind, campaign); spent amounts stay spent.

        ``campaign="*"`` is the kind-wide budget used when no campaign budget exists.
        ``actor`` (the admin key's name) is recorded on the ``budget_set`` ledger row.
        """
        actor = _actor(actor)
        check_text("kind", kind, MAX_SHORT)
        check_text("campaign", campaign, MAX_ID)
        check_text("unit", unit, MAX_SHORT)
        check_amount("total", total, zero=True)
        now = self._now()
        return self._dialect.run(
            lambda tx: _admin.set_budget(tx, kind, campaign, unit, total, now=now, actor=actor),
            write=True,
        )

    def budget(self, kind: str, campaign: str) -> Budget | None:
        """The budget of (kind, campaign), or None (unlimited unless ``*`` has one)."""
        for budget in self.budgets():
            if budget.kind == kind and budget.campaign == campaign:
                return budget
        return None

    def budgets(self) -> list[Budget]:
        return self._dialect.run(_admin.budgets, write=False)

    def load_codes(self, pool: str, codes: Sequence[str], *, actor: str | None = None) -> CodeLoad:
        """Add coupon codes to ``pool``; duplicates (in the list or already known) are skipped."""
        actor = _actor(actor)
        check_text("pool", pool, MAX_ID)
        if len(codes) > MAX_CODES_PER_LOAD:
            raise StoreInputError(f"at most {MAX_CODES_PER_LOAD} codes per load")
        for code in codes:
            check_text("code", code, MAX_CODE)
        now = self._now()
        return self._dialect.run(
            lambda tx: _admin.load_codes(tx, pool, list(codes), now=now, actor=actor), write=True
        )

    def code_pool(self, pool: str) -> CodePool | None:
        check_text("pool", pool, MAX_ID)
        return self._dialect.run(lambda tx: _admin.code_pool(tx, pool), write=False)

    def set_user_cap(self, cap: UserCap, *, actor: str | None = None) -> None:
        """At most ``cap.max_redemptions`` per subject per ``cap.period`` (scope: kind or *).

        The change is a ``cap_set`` ledger row, with ``actor`` (the admin key's name).
        """
        actor = _actor(actor)
        check_text("scope", cap.scope, MAX_SHORT)
        check_amount("max_redemptions", cap.max_redemptions, zero=True)
        if cap.period < timedelta(seconds=1) or cap.period.microseconds:
            raise StoreInputError("a cap period is a whole number of seconds, at least 1")
        now = self._now()
        self._dialect.run(lambda tx: _admin.set_user_cap(tx, cap, now=now, actor=actor), write=True)

    def remove_user_cap(self, scope: str, *, actor: str | None = None) -> bool:
        """Delete the cap of ``scope``; a removal is a ``cap_removed`` ledger row."""
        check_text("scope", scope, MAX_SHORT)
        actor = _actor(actor)
        now = self._now()
        return self._dialect.run(
            lambda tx: _admin.remove_user_cap(tx, scope, now=now, actor=actor), write=True
        )

    def user_caps(self) -> list[UserCap]:
        return self._dialect.run(_admin.user_caps, write=False)

    # -- ledger, issued tokens, compensations -------------------------------------

    def ledger(
        self,
        *,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> LedgerPage:
        """Ledger rows in ``seq`` order, filtered; ``after`` is the previous page's cursor.

        ``since`` is inclusive, ``until`` exclusive; ``limit`` is capped at 1000.
        """
        if subject is not None:
            check_text("subject", subject, MAX_NAME)
        if after is not None:
            check_amount("after", after, zero=True)
        check_amount("limit", limit)
        since_us = None if since is None else to_us(since)
        until_us = None if until is None else to_us(until)
        return self._dialect.run(
            lambda tx: _admin.ledger(
                tx,
                subject=subject,
                since=since_us,
                until=until_us,
                after=after,
                limit=min(limit, MAX_PAGE),
            ),
            write=False,
        )

    def record_issued(self, token: IssuedToken, *, actor: str | None = None) -> bool:
        """Remember a token the server issued; False if its jti or alert id is known.

        ``actor`` (the admin key's name) is recorded on the ``issued`` ledger row.
        """
        actor = _actor(actor)
        for name, value, limit in (
            ("jti", token.jti, MAX_ID),
            ("subject", token.subject, MAX_NAME),
            ("issuer", token.issuer, MAX_NAME),
            ("kind", token.kind, MAX_SHORT),
            ("unit", token.unit, MAX_SHORT),
            ("campaign", token.campaign, MAX_ID),
            ("alert id", token.alert_id, MAX_ID),
            ("token", token.token, MAX_TOKEN),
        ):
            check_text(name, value, limit)
        for name, optional, limit in (
            ("error code", token.error_code, MAX_SHORT),
            ("incident", token.incident, MAX_ID),
            ("alert URL", token.alert_url, 2048),
            ("severity", token.severity, MAX_SHORT),
            ("segment", token.segment, MAX_SHORT),
        ):
            if optional is not None:
                check_text(name, optional, limit)
        check_amount("amount", token.amount)
        to_us(token.expires_at)
        now = self._now()
        return self._dialect.run(
            lambda tx: _admin.record_issued(tx, token, now=now, actor=actor), write=True
        )

    def alert(self, alert_id: str) -> IssuedToken | None:
        """The issued token an alert id stands for, or None."""
        check_text("alert id", alert_id, MAX_ID)
        return self._dialect.run(lambda tx: _admin.alert(tx, alert_id), write=False)

    def mark_shown(self, alert_id: str) -> bool:
        """Record that the alert was shown, the first time only; True if this call did.

        Callers skip it when the `IssuedToken` read already has ``shown_at``, so later
        views cost no write at all.
        """
        check_text("alert id", alert_id, MAX_ID)
        now = self._now()
        return self._dialect.run(lambda tx: _admin.mark_shown(tx, alert_id, now=now), write=True)

    def compensations(self, subject: str) -> Compensations:
        """Redeemed (newest first) and pending (issued, unredeemed, unexpired) for a subject."""
        check_text("subject", subject, MAX_NAME)
        now = self._now()
        return self._dialect.run(lambda tx: _admin.compensations(tx, subject, now=now), write=False)

    # -- call events ----------------------------------------------------------------

    def ingest_events(self, records: Sequence[EventRecord | OutcomeRecord]) -> IngestResult:
        """Store a batch of call and outcome events, and fold the new call events into
        the rollups, atomically.

        Events whose ``event_id`` is already stored (or repeated in the batch) are
        duplicates: they change nothing. The batch is one transaction: on any error
        nothing of it is stored and it may be sent again.

        Raises:
            StoreInputError: a record is out of range (nothing was attempted).
            StoreError: the database failed; nothing was committed.
        """
        now = self._now()
        calls = [record for record in records if isinstance(record, EventRecord)]
        outcomes = [record for record in records if isinstance(record, OutcomeRecord)]
        if len(records) > _events.MAX_EVENTS_PER_INGEST:
            raise StoreInputError(f"at most {_events.MAX_EVENTS_PER_INGEST} events per ingest")
        rows = _events.event_rows(calls, now)
        outcome_rows = _outcomes.outcome_rows(outcomes, now)
        if not rows and not outcome_rows:
            return IngestResult(accepted=0, duplicates=len(records))

        def work(tx: Tx) -> IngestResult:
            result = (
                _events.ingest(tx, rows, submitted=len(calls))
                if rows
                else IngestResult(accepted=0, duplicates=len(calls))
            )
            new_outcomes = _outcomes.insert_new(tx, outcome_rows)
            return IngestResult(
                accepted=result.accepted + new_outcomes,
                duplicates=result.duplicates + len(outcomes) - new_outcomes,
            )

        return self._dialect.run(work, write=True)

    def events(
        self,
        *,
        user_id: str | None = None,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredEvent]:
        """Stored events, newest first; ``since`` inclusive, ``until`` exclusive.

        ``limit`` is capped at 1000.
        """
        if user_id is not None:
            check_text("user_id", user_id, MAX_NAME)
        if endpoint is not None:
            check_text("endpoint", endpoint, MAX_NAME)
        check_amount("limit", limit)
        since_us = None if since is None else to_us(since)
        until_us = None if until is None else to_us(until)
        return self._dialect.run(
            lambda tx: _events.list_events(
                tx, user_id=user_id, endpoint=endpoint, since=since_us, until=until_us,
                limit=min(limit, MAX_PAGE),
            ),
            write=False,
        )  # fmt: skip

    def event_rollups(self, since: datetime, until: datetime) -> list[RollupRow]:
        """Per-minute rollups whose minute is in [since, until), in key order."""
        low, high = to_us(since), to_us(until)
        return self._dialect.run(lambda tx: _events.rollups(tx, since=low, until=high), write=False)

    def user_minutes(
        self, since: datetime, until: datetime, *, user_id: str | None = None
    ) -> list[UserMinute]:
        """Per-user minute counts whose minute is in [since, until), in key order."""
        if user_id is not None:
            check_text("user_id", user_id, MAX_NAME)
        low, high = to_us(since), to_us(until)
        return self._dialect.run(
            lambda tx: _events.user_minutes(tx, since=low, until=high, user_id=user_id),
            write=False,
        )

    def prune_events(
        self,
        *,
        event_retention: timedelta,
        rollup_retention: timedelta,
        daily_rollup_retention: timedelta | None = None,
        chunk: int = 10_000,
    ) -> PruneResult:
        """Delete events (call and outcome) older than ``event_retention`` and rollups
        older than ``rollup_retention``.

        Events are deleted ``chunk`` rows per transaction, so writers never wait long
        for a big first prune. Ages count from the event time ``ts`` (rollups: their
        minute; daily rollups: their day's start, kept ``daily_rollup_retention``,
        by default `DEFAULT_DAILY_ROLLUP_RETENTION`), against the store's clock.

        Raises:
            StoreInputError: a retention is not positive, or ``chunk`` is out of range.
        """
        daily_retention = (
            DEFAULT_DAILY_ROLLUP_RETENTION
            if daily_rollup_retention is None
            else daily_rollup_retention
        )
        if min(event_retention, rollup_retention, daily_retention) <= timedelta(0):
            raise StoreInputError("retention periods must be positive")
        check_amount("chunk", chunk)
        now = self._now()
        event_cutoff = now - int(event_retention / timedelta(microseconds=1))
        rollup_cutoff = now - int(rollup_retention / timedelta(microseconds=1))
        daily_cutoff = now - int(daily_retention / timedelta(microseconds=1))
        events = 0
        while True:
            deleted = self._dialect.run(
                lambda tx: _events.prune_events_chunk(tx, cutoff=event_cutoff, chunk=chunk),
                write=True,
            )
            events += deleted
            if deleted < chunk:
                break
        # Outcome events keep the call events' retention: a report joins the two.
        outcomes = 0
        while True:
            deleted = self._dialect.run(
                lambda tx: _outcomes.prune_chunk(tx, cutoff=event_cutoff, chunk=chunk),
                write=True,
            )
            outcomes += deleted
            if deleted < chunk:
                break
        rollups, users, daily = self._dialect.run(
            lambda tx: _events.prune_rollups(tx, cutoff=rollup_cutoff, daily_cutoff=daily_cutoff),
            write=True,
        )
        return PruneResult(
            events=events,
            rollups=rollups,
            user_minutes=users,
            daily_rollups=daily,
            outcomes=outcomes,
        )

    # -- reports ----------------------------------------------------------------------

    def rollup_groups(
        self,
        *,
        spans: Sequence[RollupSpan],
        column_sets: Sequence[tuple[str, ...]],
        endpoint: str | None = None,
        error_code: str | None = None,
    ) -> list[list[RollupGroup]]:
        """Calls and failures per combination of columns, summed over ``spans``.

        One list per column set, in their order, each in no order; all read in one
        transaction. A column set holds distinct names of `GROUP_COLUMNS` (empty: one
        total, none if no rows). The spans must not overlap (each row counts once per
        span holding it). ``endpoint`` filters the rows; ``error_code`` narrows the
        failures, not the calls.

        Raises:
            StoreInputError: an unknown grain or column, or a filter out of range.
        """
        self._check_report_filters(endpoint, error_code)
        if len(spans) > 16 or len(column_sets) > 16:
            raise StoreInputError("at most 16 spans and 16 column sets per read")
        return self._dialect.run(
            lambda tx: _reports.groups(
                tx, spans=spans, column_sets=column_sets, endpoint=endpoint,
                error_code=error_code,
            ),
            write=False,
        )  # fmt: skip

    def rollup_series(
        self,
        *,
        grain: str,
        since: datetime,
        until: datetime,
        step: timedelta,
        endpoint: str | None = None,
        error_code: str | None = None,
    ) -> list[SeriesBucket]:
        """Calls and failures per ``step`` (from the epoch, UTC) over ``[since, until)``.

        Buckets without rows are left out; in time order. ``grain`` and the filters as
        in `rollup_groups`.
        """
        self._check_report_filters(endpoint, error_code)
        low, high = to_us(since), to_us(until)
        step_us = step // timedelta(microseconds=1)
        return self._dialect.run(
            lambda tx: _reports.series(
                tx, grain=grain, since=low, until=high, step=step_us,
                endpoint=endpoint, error_code=error_code,
            ),
            write=False,
        )  # fmt: skip

    @staticmethod
    def _check_report_filters(endpoint: str | None, error_code: str | None) -> None:
        if endpoint is not None:
            check_text("endpoint", endpoint, MAX_NAME)
        if error_code is not None:
            check_text("error_code", error_code, MAX_ID)

    # -- detection --------------------------------------------------------------------

    @contextlib.contextmanager
    def try_exclusive(self, key: int) -> Iterator[bool]:
        """Hold the exclusive lock ``key`` for the block if it is free (never waits).

        True: this process holds it until the block ends; False: another holder has it.
        PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), released
        when the block ends or the process dies; SQLite: a process lock and a file
        lock next to the database.
        """
        with self._dialect.try_exclusive(key) as got:
            yield got

    def call_observations(
        self,
        since: datetime,
        until: datetime,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 10_000,
    ) -> list[CallObservation]:
        """Stored ``call`` events in [since, until), in (ts, event_id) order, one page.

        ``after``: the (ts, event_id) of the previous page's last row.
        """
        check_amount("limit", limit)
        cursor = None if after is None else (to_us(after[0]), after[1])
        low, high = to_us(since), to_us(until)
        return self._dialect.run(
            lambda tx: _detection.call_observations(
                tx, since=low, until=high, after=cursor, limit=min(limit, 100_000)
            ),
            write=False,
        )

    def replay_anchor(self, start: datetime, *, floor: datetime) -> datetime:
        """The replay start at or before ``start`` that cuts no recorded episode or
        incident in two (never before ``floor``)."""
        low, high = to_us(floor), to_us(start)
        found = self._dialect.run(
            lambda tx: _detection.replay_anchor(tx, start=high, floor=low), write=False
        )
        return from_us(found)

    def detection_context(
        self, *, issued_since: datetime, known_since: datetime, incidents_since: datetime
    ) -> tuple[
        list[tuple[str, datetime]], set[tuple[str, str, str]], dict[str, str], list[IncidentRecord]
    ]:
        """What a detector run starts from, in one read: the users' latest issued
        automatic compensation (the cooldown), the decisions already recorded, the
        profiles' segments and the incidents to re-apply."""
        issued, known, since = to_us(issued_since), to_us(known_since), to_us(incidents_since)

        def work(tx: Tx) -> Any:
            return (
                [(user, from_us(at)) for user, at in _detection.recent_issued(tx, since=issued)],
                _detection.known_keys(tx, since=known),
                _detection.profiles(tx),
                _detection.replay_incidents(tx, since=since),
            )

        result: Any = self._dialect.run(work, write=False)
        return result  # type: ignore[no-any-return]

    def record_detection(
        self,
        *,
        episodes: Sequence[EpisodeRecord] = (),
        opened: Sequence[IncidentRecord] = (),
        closed: Sequence[tuple[str, datetime, str, int, datetime]] = (),
        degraded: Sequence[tuple[str, datetime]] | None = None,
    ) -> tuple[int, int]:
        """Record a run's episodes and incidents, in one transaction with their ledger
        rows. ``closed``: (incident id, end, severity, affected users, closed at).
        ``degraded``: replace the degraded endpoints (None: leave them).

        Returns (incidents opened now, incidents closed now): those already recorded
        (by an earlier run or another replica) change nothing and write no ledger row.
        """
        now = self._now()

        def work(tx: Tx) -> tuple[int, int]:
            _detection.upsert_episodes(tx, episodes, now=now)
            new = sum(_detection.open_incident(tx, one, now=now) for one in opened)
            done = sum(
                _detection.close_incident(
                    tx, ident, end=to_us(end), severity=severity, affected_users=affected,
                    closed_at=to_us(at), now=now,
                )
                for ident, end, severity, affected, at in closed
            )  # fmt: skip
            if degraded is not None:
                _detection.replace_degraded(
                    tx, [(name, to_us(since)) for name, since in degraded], now=now
                )
            return new, done

        return self._dialect.run(work, write=True)

    def record_auto_compensation(
        self, compensation: AutoCompensation, tokens: Sequence[IssuedToken] = ()
    ) -> AutoOutcome:
        """Record one automatic compensation exactly once, with its tokens.

        In one transaction: the (user_id, reason, ref) row, and for status ``issued``
        the issued-token records (pending compensation, alert) and their ``issued``
        ledger rows (detail: reason, ref). A budget of the token's (kind, campaign),
        else (kind, ``*``), that cannot cover it (its remaining amount less the tokens
        issued against it and still redeemable) makes the row ``refused`` instead and
        records no token. A key already recorded returns `AutoDuplicate`: nothing
        changes.
        """
        c = compensation
        if c.status not in AUTO_STATUSES or c.reason not in ("episode", "incident"):
            raise StoreInputError("unknown status or reason")
        check_text("user_id", c.user_id, MAX_NAME)
        check_text("ref", c.ref, MAX_ID)
        for token in tokens:
            check_text("jti", token.jti, MAX_ID)
            check_text("token", token.token, MAX_TOKEN)
            check_amount("amount", token.amount)
        now = self._now()
        return self._dialect.run(
            lambda tx: _detection.record_auto(tx, c, list(tokens), now=now), write=True
        )

    def declare_incident(self, incident: IncidentRecord) -> tuple[bool, IncidentRecord]:
        """Record an operator's incident with its ``incident_opened`` ledger row.

        Returns (created, the stored incident): False when its id was known.
        """
        check_text("incident id", incident.id, MAX_ID)
        if not 1 <= len(incident.scope) <= 1000:
            raise StoreInputError("scope has 1 to 1000 endpoints")
        for name in incident.scope:
            check_text("scope endpoint", name, MAX_NAME)
        now = self._now()

        def work(tx: Tx) -> tuple[bool, IncidentRecord]:
            created = _detection.open_incident(tx, incident, now=now)
            found = _detection.get_incident(tx, incident.id)
            assert found is not None
            return created, found

        return self._dialect.run(work, write=True)

    def request_incident_close(self, incident_id: str, at: datetime) -> IncidentRecord | None:
        """Ask the detector to close an open incident at ``at``; None if unknown."""
        check_text("incident id", incident_id, MAX_ID)
        moment, now = to_us(at), self._now()
        return self._dialect.run(
            lambda tx: _detection.request_close(tx, incident_id, at=moment, now=now), write=True
        )

    def incident(self, incident_id: str) -> IncidentRecord | None:
        check_text("incident id", incident_id, MAX_ID)
        return self._dialect.run(lambda tx: _detection.get_incident(tx, incident_id), write=False)

    def incidents(
        self, *, state: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[IncidentRecord]:
        """Incidents, latest start first."""
        check_amount("limit", limit)
        low = None if since is None else to_us(since)
        return self._dialect.run(
            lambda tx: _detection.list_incidents(tx, state=state, since=low, limit=limit),
            write=False,
        )

    def incidents_overlapping(
        self, since: datetime, until: datetime, *, limit: int = 1000
    ) -> list[IncidentRecord]:
        """Incidents that started before ``until`` and had not ended by ``since`` (open
        ones included), earliest start first; at most ``limit`` (capped at 1000)."""
        check_amount("limit", limit)
        low, high = to_us(since), to_us(until)
        return self._dialect.run(
            lambda tx: _detection.overlapping_incidents(tx, since=low, until=high, limit=limit),
            write=False,
        )

    def episodes(
        self,
        *,
        user_id: str | None = None,
        endpoint: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[EpisodeRecord]:
        """Episodes, latest start first; ``since`` filters on the start."""
        if user_id is not None:
            check_text("user_id", user_id, MAX_NAME)
        if endpoint is not None:
            check_text("endpoint", endpoint, MAX_NAME)
        check_amount("limit", limit)
        low = None if since is None else to_us(since)
        return self._dialect.run(
            lambda tx: _detection.list_episodes(
                tx, user_id=user_id, endpoint=endpoint, since=low, limit=limit
            ),
            write=False,
        )

    def auto_compensations(
        self, *, status: str | None = None, user_id: str | None = None, limit: int = 100
    ) -> list[AutoCompensation]:
        """Automatic compensation decisions, latest first."""
        if user_id is not None:
            check_text("user_id", user_id, MAX_NAME)
        check_amount("limit", limit)
        return self._dialect.run(
            lambda tx: _detection.list_auto(tx, status=status, user_id=user_id, limit=limit),
            write=False,
        )

    def degraded_endpoints(self) -> list[tuple[str, datetime, datetime]]:
        """(endpoint, degraded since, as of) from the last detector run."""
        rows = self._dialect.run(_detection.degraded, write=False)
        return [(name, from_us(since), from_us(at)) for name, since, at in rows]

    def set_user_profile(self, profile: UserProfile) -> None:
        check_text("user_id", profile.user_id, MAX_NAME)
        for name, value in (("segment", profile.segment), ("value_tier", profile.value_tier)):
            if value is not None:
                check_text(name, value, MAX_SHORT)
        self._dialect.run(lambda tx: _detection.set_profile(tx, profile), write=True)

    def user_profile_segments(self) -> dict[str, str]:
        return self._dialect.run(_detection.profiles, write=False)

    def user_compensations(self, user_id: str) -> list[UserCompensation]:
        """Every token issued to ``user_id`` (newest first) with its reason and ref."""
        check_text("user_id", user_id, MAX_NAME)
        return self._dialect.run(lambda tx: _detection.user_compensations(tx, user_id), write=False)


def _actor(actor: str | None) -> str | None:
    return None if actor is None else check_text("actor", actor, MAX_SHORT)


def open_store(
    url: str,
    *,
    clock: Clock = _utcnow,
    idempotency_ttl: timedelta = timedelta(hours=24),
    idempotency_lock_timeout: timedelta = timedelta(seconds=60),
    pool_size: int = 10,
    timeout: timedelta = timedelta(seconds=10),
    apply_migrations: bool = True,
    render: ResponseRenderer | None = None,
) -> Store:
    """Open (and migrate) the store at ``url``.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, or a
            ``postgresql://`` / ``postgres://`` connection URL (libpq syntax).
        clock: the source of "now" (tests inject a fake one).
        idempotency_ttl: how long an idempotency key is remembered (default 24 h).
        idempotency_lock_timeout: after this, an in-flight key can be taken over.
        pool_size: PostgreSQL connections at most.
        timeout: SQLite busy timeout; PostgreSQL connect and pool-wait timeout.
        apply_migrations: False opens without changing the schema (``migrate --check``);
            a schema newer than this code is refused either way.
        render: how keyed redemptions store their response (`ResponseRenderer`);
            None: keyed redemptions are refused with `ConfigurationError`.

    Raises:
        ConfigurationError: the URL names no supported back end.
        StoreError: the database cannot be opened or migrated.
    """
    from ._sqlite import SqliteDialect

    if idempotency_ttl <= timedelta(0) or idempotency_lock_timeout <= timedelta(0):
        raise ConfigurationError("idempotency_ttl and idempotency_lock_timeout must be positive")
    dialect: Dialect
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ConfigurationError("sqlite URL needs a file path (sqlite:///path.db)")
        dialect = SqliteDialect(path, busy_timeout=timeout)
    elif url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresDialect

        if pool_size < 1:
            raise ConfigurationError("pool_size must be at least 1")
        dialect = PostgresDialect(url, max_size=pool_size, timeout=timeout)
    else:
        # Never echo the URL: it may carry a password.
        raise ConfigurationError("database URL must start with sqlite:/// or postgresql://")
    try:
        return Store(
            dialect,
            clock=clock,
            idempotency_ttl=idempotency_ttl,
            idempotency_lock_timeout=idempotency_lock_timeout,
            apply_migrations=apply_migrations,
            render=render,
        )
    except BaseException:
        dialect.close()
        raise
