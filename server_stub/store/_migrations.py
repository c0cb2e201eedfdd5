"""Versioned schema migrations: one list, applied to both back ends.

`migrate` runs at every `open_store`: inside one transaction (DDL is transactional on
SQLite and PostgreSQL) it takes the migration lock, reads ``schema_version`` and applies
the missing migrations in order, recording each. Running it again is a no-op; several
processes starting at once serialize on the lock. A database newer than this code is
refused rather than guessed at.

Statements use three placeholders, ``{auto_id}``, ``{blob}`` and ``{without_rowid}``
(tables clustered on their natural key on SQLite), filled per dialect;
the few truly dialect-specific statements (the ledger's append-only triggers) are
listed per back end. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import time

import attrs

from ._base import Dialect, Tx
from ._errors import StoreError
from ._pg_functions import (
    CHARGE_BUDGETS_FUNCTION,
    COMPLETE_BATCH_FUNCTION,
    REDEEM_BATCH_FUNCTION,
    REDEEM_BATCH_FUNCTION_DEFERRED,
    REDEEM_BATCH_FUNCTION_V5,
)


@attrs.frozen
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    sqlite: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()


_LEDGER_EVENTS = "'redeemed', 'reversed', 'budget_set', 'codes_loaded', 'issued'"
_LEDGER_EVENTS_V3 = _LEDGER_EVENTS + ", 'cap_set', 'cap_removed'"
_LEDGER_EVENTS_V8 = _LEDGER_EVENTS_V3 + ", 'incident_opened', 'incident_closed'"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="redemptions, budgets, coupon codes, caps, ledger, idempotency, issued",
        statements=(
            """CREATE TABLE redemptions (
                id TEXT PRIMARY KEY,
                jti TEXT NOT NULL UNIQUE,
                subject TEXT NOT NULL,
                issuer TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount BIGINT NOT NULL CHECK (amount > 0),
                unit TEXT NOT NULL,
                campaign TEXT NOT NULL,
                grant_json TEXT NOT NULL,
                budget_campaign TEXT,
                cap_usage TEXT NOT NULL,
                idempotency_key TEXT,
                expires_at BIGINT,
                redeemed_at BIGINT NOT NULL,
                reversed_at BIGINT,
                reversal_reason TEXT
            ){without_rowid}""",
            """CREATE TABLE budgets (
                kind TEXT NOT NULL,
                campaign TEXT NOT NULL,
                unit TEXT NOT NULL,
                total BIGINT NOT NULL CHECK (total >= 0),
                remaining BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= total),
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (kind, campaign)
            )""",
            """CREATE TABLE code_pools (
                pool TEXT PRIMARY KEY,
                total BIGINT NOT NULL CHECK (total >= 0),
                remaining BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= total)
            )""",
            """CREATE TABLE coupon_codes (
                id {auto_id},
                pool TEXT NOT NULL REFERENCES code_pools (pool),
                code TEXT NOT NULL UNIQUE,
                redemption_id TEXT UNIQUE REFERENCES redemptions (id),
                loaded_at BIGINT NOT NULL,
                voided_at BIGINT
            )""",
            "CREATE INDEX coupon_codes_free ON coupon_codes (pool, id) WHERE redemption_id IS NULL",
            """CREATE TABLE user_caps (
                scope TEXT PRIMARY KEY,
                max_redemptions BIGINT NOT NULL CHECK (max_redemptions >= 0),
                period_seconds BIGINT NOT NULL CHECK (period_seconds > 0)
            )""",
            """CREATE TABLE subject_usage (
                subject TEXT NOT NULL,
                scope TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                used BIGINT NOT NULL CHECK (used >= 0),
                PRIMARY KEY (subject, scope, window_start)
            ){without_rowid}""",
            f"""CREATE TABLE ledger (
                seq {{auto_id}},
                at BIGINT NOT NULL,
                event TEXT NOT NULL CHECK (event IN ({_LEDGER_EVENTS})),
                subject TEXT,
                jti TEXT,
                redemption_id TEXT,
                kind TEXT,
                amount BIGINT,
                unit TEXT,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX ledger_by_subject ON ledger (subject, seq)",
            "CREATE INDEX ledger_by_time ON ledger (at, seq)",
            """CREATE TABLE idempotency_keys (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
                owner TEXT NOT NULL,
                locked_at BIGINT NOT NULL,
                status INTEGER,
                body {blob},
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (scope, key)
            )""",
            "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at)",
            """CREATE TABLE issued_tokens (
                jti TEXT PRIMARY KEY,
                subject TEXT NOT NULL,
                issuer TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount BIGINT NOT NULL CHECK (amount > 0),
                unit TEXT NOT NULL,
                campaign TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                alert_id TEXT NOT NULL UNIQUE,
                token TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX issued_tokens_by_subject ON issued_tokens (subject, expires_at)",
        ),
        sqlite=(
            "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
            "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
        ),
        postgresql=(
            "CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'ledger is append-only'; END $$",
            "CREATE TRIGGER ledger_no_change BEFORE UPDATE OR DELETE ON ledger"
            " FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
            "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger"
            " FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()",
        ),
    ),
    Migration(
        version=2,
        description="issued_tokens: the provider's message and suggestion (JSON, nullable)",
        statements=(
            "ALTER TABLE issued_tokens ADD COLUMN message TEXT",
            "ALTER TABLE issued_tokens ADD COLUMN suggestion TEXT",
        ),
    ),
    Migration(
        version=3,
        description="call events (deduped on event_id), per-minute rollups, per-user minutes",
        statements=(
            # Timestamps in microseconds since the epoch, as everywhere; params and
            # extensions are canonical JSON text; transient is 0/1/NULL.
            """CREATE TABLE events (
                event_id TEXT PRIMARY KEY,
                ts BIGINT NOT NULL,
                kind TEXT NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
                user_id TEXT,
                endpoint TEXT NOT NULL,
                method TEXT,
                status INTEGER,
                error_code TEXT,
                category TEXT,
                severity TEXT,
                transient INTEGER,
                attempts INTEGER NOT NULL CHECK (attempts > 0),
                duration_ms DOUBLE PRECISION,
                platform TEXT,
                os_version TEXT,
                app_version TEXT,
                sdk_version TEXT,
                source TEXT NOT NULL,
                params TEXT NOT NULL,
                count BIGINT NOT NULL CHECK (count > 0),
                segment TEXT,
                extensions TEXT NOT NULL,
                received_at BIGINT NOT NULL
            )""",
            "CREATE INDEX events_by_time ON events (ts)",
            "CREATE INDEX events_by_user ON events (user_id, ts)",
            "CREATE INDEX events_by_endpoint ON events (endpoint, ts)",
            # An absent dimension is '' (primary-key columns are NOT NULL).
            """CREATE TABLE event_rollups (
                minute BIGINT NOT NULL,
                endpoint TEXT NOT NULL,
                outcome TEXT NOT NULL,
                error_code TEXT NOT NULL,
                category TEXT NOT NULL,
                platform TEXT NOT NULL,
                os_version TEXT NOT NULL,
                app_version TEXT NOT NULL,
                sdk_version TEXT NOT NULL,
                calls BIGINT NOT NULL CHECK (calls >= 0),
                failures BIGINT NOT NULL CHECK (failures >= 0),
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                PRIMARY KEY (minute, endpoint, outcome, error_code, category, platform,
                    os_version, app_version, sdk_version)
            ){without_rowid}""",
            """CREATE TABLE event_user_minutes (
                minute BIGINT NOT NULL,
                endpoint TEXT NOT NULL,
                user_id TEXT NOT NULL,
                calls BIGINT NOT NULL CHECK (calls >= 0),
                failures BIGINT NOT NULL CHECK (failures >= 0),
                PRIMARY KEY (minute, endpoint, user_id)
            ){without_rowid}""",
        ),
    ),
    Migration(
        version=4,
        description="ledger: actor (the admin key's name) and cap_set/cap_removed events",
        statements=(),
        # SQLite cannot change a CHECK constraint in place: the ledger is rebuilt (rows,
        # seq values, indexes and append-only triggers all kept). DROP TABLE fires no
        # DELETE trigger; the rebuild is one transaction like every migration.
        sqlite=(
            f"""CREATE TABLE ledger_v3 (
                seq INTEGER PRIMARY KEY,
                at BIGINT NOT NULL,
                event TEXT NOT NULL CHECK (event IN ({_LEDGER_EVENTS_V3})),
                subject TEXT,
                jti TEXT,
                redemption_id TEXT,
                kind TEXT,
                amount BIGINT,
                unit TEXT,
                detail TEXT NOT NULL,
                actor TEXT
            )""",
            "INSERT INTO ledger_v3 (seq, at, event, subject, jti, redemption_id, kind, amount,"
            " unit, detail) SELECT seq, at, event, subject, jti, redemption_id, kind, amount,"
            " unit, detail FROM ledger",
            "DROP TABLE ledger",
            "ALTER TABLE ledger_v3 RENAME TO ledger",
            "CREATE INDEX ledger_by_subject ON ledger (subject, seq)",
            "CREATE INDEX ledger_by_time ON ledger (at, seq)",
            "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
            "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
        ),
        postgresql=(
            "ALTER TABLE ledger ADD COLUMN actor TEXT",
            "ALTER TABLE ledger DROP CONSTRAINT ledger_event_check",
            f"ALTER TABLE ledger ADD CONSTRAINT ledger_event_check"
            f" CHECK (event IN ({_LEDGER_EVENTS_V3}))",
        ),
    ),
    Migration(
        version=5,
        description="postgresql: keyed redemption batches as server-side functions",
        statements=(),
        postgresql=(REDEEM_BATCH_FUNCTION_V5, COMPLETE_BATCH_FUNCTION),
    ),
    Migration(
        version=6,
        description="issued_tokens: the policy's priority and support_flag (0/1)",
        statements=(
            "ALTER TABLE issued_tokens ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE issued_tokens ADD COLUMN support_flag INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        version=7,
        description="outbox, deliveries, webhook endpoints, sink health, reminders seen;"
        " issued_tokens: error code, incident, alert URL",
        statements=(
            # One row per event, written in the transaction of its ledger row. The
            # dispatcher claims due rows (next_attempt_at <= now, while pending or
            # delivering: a claim moves next_attempt_at to the lease's end, so an
            # expired lease is simply due again).
            """CREATE TABLE outbox (
                id TEXT PRIMARY KEY,
                type TEXT NOT NULL,
                payload TEXT NOT NULL,
                subject TEXT,
                jti TEXT,
                created_at BIGINT NOT NULL,
                status TEXT NOT NULL
                    CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL,
                lease_until BIGINT,
                leased_by TEXT,
                last_error TEXT,
                delivered_at BIGINT
            ){without_rowid}""",
            "CREATE INDEX outbox_due ON outbox (next_attempt_at, id)"
            " WHERE status IN ('pending', 'delivering')",
            "CREATE INDEX outbox_by_status ON outbox (status, id)",
            "CREATE INDEX outbox_by_jti ON outbox (jti, type)",
            # Per-sink acknowledgements: a retry goes only to the sinks not listed here.
            """CREATE TABLE outbox_deliveries (
                outbox_id TEXT NOT NULL REFERENCES outbox (id),
                sink TEXT NOT NULL,
                delivered_at BIGINT NOT NULL,
                PRIMARY KEY (outbox_id, sink)
            ){without_rowid}""",
            """CREATE TABLE webhook_endpoints (
                id TEXT PRIMARY KEY,
                url TEXT NOT NULL,
                secrets TEXT NOT NULL,
                event_types TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            """CREATE TABLE sink_health (
                sink TEXT PRIMARY KEY,
                failing_since BIGINT,
                disabled_at BIGINT,
                disabled_reason TEXT
            )""",
            """CREATE TABLE reminders_seen (
                jti TEXT PRIMARY KEY,
                subject TEXT NOT NULL,
                seen_at BIGINT NOT NULL
            )""",
            "ALTER TABLE issued_tokens ADD COLUMN error_code TEXT",
            "ALTER TABLE issued_tokens ADD COLUMN incident TEXT",
            "ALTER TABLE issued_tokens ADD COLUMN alert_url TEXT",
        ),
    ),
    Migration(
        version=8,
        description="detection: episodes, incidents, automatic compensations, user profiles",
        statements=(
            # Ids are the detector's deterministic ids (ep_..., inc_...): replaying the
            # same history finds the same rows, so recording is an idempotent upsert.
            """CREATE TABLE episodes (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                start_at BIGINT NOT NULL,
                end_at BIGINT,
                failures BIGINT NOT NULL CHECK (failures > 0),
                rule TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
                detected_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX episodes_by_user ON episodes (user_id, start_at)",
            "CREATE INDEX episodes_by_start ON episodes (start_at)",
            # scope: canonical JSON list of endpoints, ["*"] for all.
            """CREATE TABLE incidents (
                id TEXT PRIMARY KEY,
                scope TEXT NOT NULL,
                start_at BIGINT NOT NULL,
                end_at BIGINT,
                severity TEXT,
                manual INTEGER NOT NULL CHECK (manual IN (0, 1)),
                state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
                affected_users BIGINT,
                declared_at BIGINT NOT NULL,
                close_requested_at BIGINT,
                closed_at BIGINT,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX incidents_by_start ON incidents (start_at)",
            # One row per (user, reason, ref): the key that makes issuance exactly-once.
            """CREATE TABLE auto_compensations (
                user_id TEXT NOT NULL,
                reason TEXT NOT NULL CHECK (reason IN ('episode', 'incident')),
                ref TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('issued', 'dry_run', 'refused', 'withheld')),
                why TEXT,
                severity TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount BIGINT NOT NULL,
                unit TEXT NOT NULL,
                jti TEXT,
                extra_jti TEXT,
                detail TEXT NOT NULL,
                decided_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (user_id, reason, ref)
            )""",
            "CREATE INDEX auto_compensations_by_time ON auto_compensations (decided_at)",
            "CREATE INDEX auto_compensations_by_status ON auto_compensations (status, created_at)",
            """CREATE TABLE user_profiles (
                user_id TEXT PRIMARY KEY,
                segment TEXT,
                value_tier TEXT,
                updated_at BIGINT NOT NULL
            )""",
            # The last detector run's degraded endpoints, for every replica to show.
            """CREATE TABLE degraded_endpoints (
                endpoint TEXT PRIMARY KEY,
                since BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
        ),
        # The ledger learns two events; its CHECK constraint is rebuilt per back end.
        sqlite=(
            "DROP TRIGGER ledger_no_update",
            "DROP TRIGGER ledger_no_delete",
            f"""CREATE TABLE ledger_v8 (
                seq INTEGER PRIMARY KEY,
                at BIGINT NOT NULL,
                event TEXT NOT NULL CHECK (event IN ({_LEDGER_EVENTS_V8})),
                subject TEXT,
                jti TEXT,
                redemption_id TEXT,
                kind TEXT,
                amount BIGINT,
                unit TEXT,
                detail TEXT NOT NULL,
                actor TEXT
            )""",
            "INSERT INTO ledger_v8 (seq, at, event, subject, jti, redemption_id, kind, amount,"
            " unit, detail, actor) SELECT seq, at, event, subject, jti, redemption_id, kind,"
            " amount, unit, detail, actor FROM ledger",
            "DROP TABLE ledger",
            "ALTER TABLE ledger_v8 RENAME TO ledger",
            "CREATE INDEX ledger_by_subject ON ledger (subject, seq)",
            "CREATE INDEX ledger_by_time ON ledger (at, seq)",
            "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
            "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger"
            " BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END",
        ),
        postgresql=(
            "ALTER TABLE ledger DROP CONSTRAINT ledger_event_check",
            "ALTER TABLE ledger ADD CONSTRAINT ledger_event_check"
            f" CHECK (event IN ({_LEDGER_EVENTS_V8}))",
        ),
    ),
    Migration(
        version=9,
        description="analytics: per-day event rollups, backfilled from the minute rollups",
        statements=(
            # The minute rollups summed per UTC day: a 30-day report reads a few
            # thousand rows instead of ~40 000 minutes of them. Kept by the same ingest
            # transaction as the minute rollups (store/_events.py).
            """CREATE TABLE event_rollups_daily (
                day BIGINT NOT NULL,
                endpoint TEXT NOT NULL,
                outcome TEXT NOT NULL,
                error_code TEXT NOT NULL,
                category TEXT NOT NULL,
                platform TEXT NOT NULL,
                os_version TEXT NOT NULL,
                app_version TEXT NOT NULL,
                sdk_version TEXT NOT NULL,
                calls BIGINT NOT NULL CHECK (calls >= 0),
                failures BIGINT NOT NULL CHECK (failures >= 0),
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                PRIMARY KEY (day, endpoint, outcome, error_code, category, platform,
                    os_version, app_version, sdk_version)
            ){without_rowid}""",
            # 86400000000 µs = one day: days are UTC days from the epoch.
            """INSERT INTO event_rollups_daily (day, endpoint, outcome, error_code, category,
                platform, os_version, app_version, sdk_version, calls, failures, first_seen,
                last_seen)
            SELECT minute - minute % 86400000000, endpoint, outcome, error_code, category,
                platform, os_version, app_version, sdk_version, SUM(calls), SUM(failures),
                MIN(first_seen), MAX(last_seen)
            FROM event_rollups
            GROUP BY minute - minute % 86400000000, endpoint, outcome, error_code, category,
                platform, os_version, app_version, sdk_version""",
        ),
    ),
    Migration(
        version=10,
        description="compensation funnel: outcome events; issued_tokens: shown_at,"
        " severity (grade), segment",
        statements=(
            # Business outcomes (kind "outcome"), deduped on event_id like call events;
            # value is canonical JSON text (a number, a short string, a bool or null).
            """CREATE TABLE outcome_events (
                event_id TEXT PRIMARY KEY,
                ts BIGINT NOT NULL,
                name TEXT NOT NULL,
                user_id TEXT,
                value TEXT NOT NULL,
                extensions TEXT NOT NULL,
                received_at BIGINT NOT NULL
            )""",
            "CREATE INDEX outcome_events_by_user ON outcome_events (user_id, ts)",
            "CREATE INDEX outcome_events_by_name ON outcome_events (name, ts)",
            # shown_at: the first time the voucher's alert was fetched (JSON or page);
            # severity and segment: what the funnel groups by (NULL for older tokens).
            "ALTER TABLE issued_tokens ADD COLUMN shown_at BIGINT",
            "ALTER TABLE issued_tokens ADD COLUMN severity TEXT",
            "ALTER TABLE issued_tokens ADD COLUMN segment TEXT",
            # The funnel reads vouchers by issue time.
            "CREATE INDEX issued_tokens_by_created ON issued_tokens (created_at)",
        ),
    ),
    Migration(
        version=11,
        description="postgresql: the redemption batch function takes unkeyed items",
        statements=(),
        # The same function as migration 5's, plus a branch for an item without an
        # Idempotency-Key (no claim): unkeyed redemptions join the one-call batches.
        postgresql=(REDEEM_BATCH_FUNCTION,),
    ),
    Migration(
        version=12,
        description="postgresql: a redemption batch charges each budget once, before the commit",
        statements=(),
        # The per-item budget UPDATE held the row's lock through the rest of the batch,
        # its rendering and both round trips: concurrent batches queued on it. Now items
        # are checked against a running count and the row is charged once, last.
        postgresql=(REDEEM_BATCH_FUNCTION_DEFERRED, CHARGE_BUDGETS_FUNCTION),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def installed_by(statement: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> int | None:
    """The version of the first migration that runs ``statement`` on PostgreSQL, if any.

    What a store may call in the database follows from the schema it found: e.g. the
    batch functions exist from the migration that creates them on.
    """
    found = (m.version for m in migrations if statement in (*m.statements, *m.postgresql))
    return next(found, None)


def migrate(dialect: Dialect, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date; returns the schema version now in force.

    Raises:
        StoreError: the database is newer than this code, or a migration failed
            (then nothing of it was applied).
    """

    def work(tx: Tx) -> int:
        dialect.lock_for_migration(tx)
        tx.ddl(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at BIGINT NOT NULL)"
        )
        row = tx.one("SELECT MAX(version) AS version FROM schema_version")
        current = int(row["version"]) if row and row["version"] is not None else 0
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            raise StoreError(
                f"database schema version {current} is newer than this code ({latest})"
            )
        for migration in migrations:
            if migration.version <= current:
                continue
            extra = migration.sqlite if dialect.name == "sqlite" else migration.postgresql
            for statement in (*migration.statements, *extra):
                tx.ddl(
                    statement.replace("{auto_id}", dialect.auto_id)
                    .replace("{blob}", dialect.blob)
                    .replace("{without_rowid}", dialect.without_rowid)
                )
            tx.execute(
                "INSERT INTO schema_version (version, description, applied_at)"
                " VALUES (:version, :description, :at)",
                {
                    "version": migration.version,
                    "description": migration.description,
                    "at": time.time_ns() // 1_000,
                },
            )
            current = migration.version
        return current

    return dialect.run(work, write=True)


def schema_version(dialect: Dialect) -> int:
    """The highest migration recorded in the database (0 when none)."""
    row = dialect.run(
        lambda tx: tx.one("SELECT MAX(version) AS version FROM schema_version"), write=False
    )
    return int(row["version"]) if row and row["version"] is not None else 0


def has_schema_table(dialect: Dialect) -> bool:
    """True once any migration bookkeeping exists (a read; creates nothing)."""
    if dialect.name == "sqlite":
        query = (
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
    else:
        query = "SELECT 1 AS found WHERE to_regclass('schema_version') IS NOT NULL"
    return dialect.run(lambda tx: tx.one(query), write=False) is not None


def pending_migrations(
    dialect: Dialect, migrations: tuple[Migration, ...] = MIGRATIONS
) -> tuple[int, tuple[Migration, ...]]:
    """The schema version in force and the migrations not yet applied (nothing is changed).

    Raises:
        StoreError: the database cannot be read, or its schema is newer than this code.
    """
    current = schema_version(dialect) if has_schema_table(dialect) else 0
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise StoreError(f"database schema version {current} is newer than this code ({latest})")
    return current, tuple(m for m in migrations if m.version > current)
