"""Schema migrations and opening a store, on both back ends."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from errdiscount_sdk import ConfigurationError
from server_stub.store import (
    LATEST_VERSION,
    EventRecord,
    IncidentRecord,
    StoreError,
    UserCap,
    _admin,
    open_store,
)
from server_stub.store._base import Tx
from server_stub.store._migrations import MIGRATIONS, Migration, migrate
from tests.support.store_support import raw_execute, raw_rows, request


def test_opening_twice_migrates_once_and_keeps_the_data(store_url: str) -> None:
    with open_store(store_url) as first:
        assert first.schema_version() == LATEST_VERSION
        first.redeem(request("j1"))
    with open_store(store_url) as second:
        assert second.schema_version() == LATEST_VERSION
        assert second.redemption_by_jti("j1") is not None
        assert second.backend in ("sqlite", "postgresql")


def test_concurrent_openers_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        barrier.wait()
        try:
            open_store(store_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION


def test_a_newer_database_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    raw_execute(
        store_url,
        "INSERT INTO schema_version (version, description, applied_at) VALUES (999, 'future', 0)",
    )
    with pytest.raises(StoreError, match="newer"):
        open_store(store_url)


def test_a_failing_migration_applies_nothing(store_url: str) -> None:
    with open_store(store_url) as store:
        dialect = store._dialect
        broken = Migration(
            version=LATEST_VERSION + 1,
            description="half-broken",
            statements=("CREATE TABLE extra (id BIGINT)", "CREATE TABLE broken (oops"),
        )
        with pytest.raises(StoreError):
            migrate(dialect, (*MIGRATIONS, broken))
        assert store.schema_version() == LATEST_VERSION
        # "extra" was rolled back with the rest: creating it again works.
        raw_execute(store_url, "CREATE TABLE extra (id BIGINT)")


@pytest.mark.parametrize(
    "url", ["mysql://localhost/x", "sqlite://", "sqlite:///:memory:", "sqlite:///", "x"]
)
def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_an_unreachable_postgresql_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store(
            "postgresql://user:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=1",
            timeout=timedelta(seconds=0.5),
        )
    assert "s3cr3t-pw" not in str(caught.value)
    assert caught.value.retryable is False


def _undo_outbox_migration(store_url: str) -> None:
    """Undo the outbox migration (7) by hand; the caller deletes its schema_version row."""
    for table in ("outbox_deliveries", "outbox", "webhook_endpoints", "sink_health"):
        raw_execute(store_url, f"DROP TABLE {table}")
    raw_execute(store_url, "DROP TABLE reminders_seen")
    for column in ("error_code", "incident", "alert_url"):
        raw_execute(store_url, f"ALTER TABLE issued_tokens DROP COLUMN {column}")


def _undo_funnel_migration(store_url: str) -> None:
    """Undo the funnel migration (10) by hand; the caller deletes its version row."""
    raw_execute(store_url, "DROP TABLE outcome_events")
    raw_execute(store_url, "DROP INDEX issued_tokens_by_created")
    for column in FUNNEL_COLUMNS:
        raw_execute(store_url, f"ALTER TABLE issued_tokens DROP COLUMN {column}")


FUNNEL_COLUMNS = ("shown_at", "severity", "segment")


def test_migration_2_adds_provider_texts_to_a_version_1_database(store_url: str) -> None:
    # Roll a fresh database back to version 1 by hand, with one issued token in it.
    open_store(store_url).close()
    for column in ("message", "suggestion", "priority", "support_flag"):  # migrations 2, 6
        raw_execute(store_url, f"ALTER TABLE issued_tokens DROP COLUMN {column}")
    for table in ("event_user_minutes", "event_rollups", "events"):  # migration 3
        raw_execute(store_url, f"DROP TABLE {table}")
    raw_execute(store_url, "ALTER TABLE ledger DROP COLUMN actor")  # migration 4 undone
    _undo_outbox_migration(store_url)  # migration 7
    for table in (*MIGRATION_9_TABLES, *MIGRATION_8_TABLES):  # migrations 9, 8
        raw_execute(store_url, f"DROP TABLE {table}")
    _undo_funnel_migration(store_url)  # migration 10
    raw_execute(store_url, "DELETE FROM schema_version WHERE version >= 2")
    raw_execute(
        store_url,
        "INSERT INTO issued_tokens (jti, subject, issuer, kind, amount, unit, campaign,"
        " expires_at, alert_id, token, created_at) VALUES ('old', 'alice', 'iss', 'coupon',"
        " 5, 'USD', 'default', 4102444800000000, 'alert-old', 'a.b.c', 0)",
    )
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        old = store.alert("alert-old")
        assert old is not None
        assert (dict(old.message), dict(old.suggestion)) == ({}, {})
        # Migration 3: tokens issued before care flags existed have neither.
        assert (old.priority, old.support_flag) == (False, False)


MIGRATION_8_TABLES = (
    "degraded_endpoints",
    "user_profiles",
    "auto_compensations",
    "incidents",
    "episodes",
)
MIGRATION_9_TABLES = ("event_rollups_daily",)


def test_migration_8_keeps_the_ledger_append_only_and_accepts_incident_events(
    store_url: str,
) -> None:
    # A version 7 database with ledger rows; migration 8 rebuilds the event CHECK.
    with open_store(store_url) as store:
        store.set_budget("coupon", "*", 100, unit="USD_cent")
    for table in (*MIGRATION_9_TABLES, *MIGRATION_8_TABLES):
        raw_execute(store_url, f"DROP TABLE {table}")
    _undo_funnel_migration(store_url)  # migration 10, re-applied after 8
    raw_execute(store_url, "DELETE FROM schema_version WHERE version >= 8")
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        before = store.ledger().entries
        assert [e.event.value for e in before] == ["budget_set"]
        created, _ = store.declare_incident(
            IncidentRecord(
                id="inc_x", scope=("*",), start=datetime(2026, 3, 1, tzinfo=UTC), end=None,
                severity=None, manual=True, state="open", affected_users=None,
                declared_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
        )  # fmt: skip
        assert created
        assert [e.event.value for e in store.ledger().entries] == ["budget_set", "incident_opened"]
        assert store.ledger().entries[0].seq == before[0].seq
    with pytest.raises((sqlite3.DatabaseError, psycopg.Error)):
        raw_execute(store_url, "DELETE FROM ledger")
    with pytest.raises((sqlite3.DatabaseError, psycopg.Error)):
        raw_execute(store_url, "INSERT INTO ledger (at, event, detail) VALUES (0, 'nope', '{}')")


def test_sqlite_writes_few_b_trees_and_every_lookup_has_an_index(tmp_path: Path) -> None:
    path = tmp_path / "layout.db"
    with open_store(f"sqlite:///{path}") as store:
        store.redeem(request("j1", subject="alice"))
    db = sqlite3.connect(path)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        # No AUTOINCREMENT: it would rewrite sqlite_sequence on every ledger insert.
        assert "sqlite_sequence" not in tables
        assert "redemptions_by_subject" not in tables
        # Clustered on id (WITHOUT ROWID): the jti arbiter is the one other B-tree.
        origins = sorted(
            o for (o,) in db.execute("SELECT origin FROM pragma_index_list(?)", ["redemptions"])
        )
        assert origins == ["pk", "u"]
        traced: list[str] = []
        db.set_trace_callback(traced.append)
        _admin.compensations(Tx(db.cursor(), str), "alice", now=0)
        db.set_trace_callback(None)
        assert len(traced) == 2
        for sql in traced:
            plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql))
            # A full scan reads "SCAN <table>" with no index: every step must search.
            assert all(
                step.startswith("SEARCH")
                or "USING" in step
                or step.startswith(("CORRELATED", "USE TEMP"))
                for step in plan.split(" | ")
            ), plan
        (row,) = _admin.compensations(Tx(db.cursor(), str), "alice", now=0).redeemed
        assert row.jti == "j1"
    finally:
        db.close()


def test_migration_4_keeps_the_ledger_and_adds_actors_and_cap_events(store_url: str) -> None:
    # A version-3 database with ledger rows: migration 4 keeps every row and its seq,
    # adds the actor column and the cap events, and the ledger stays append-only.
    with open_store(store_url) as store:
        store.set_budget("points", "*", 100, unit="points")
        store.redeem(request("j1", subject="alice"))
        before = store.ledger().entries
    raw_execute(store_url, "ALTER TABLE ledger DROP COLUMN actor")
    for column in ("priority", "support_flag"):  # migration 6, re-applied after 4
        raw_execute(store_url, f"ALTER TABLE issued_tokens DROP COLUMN {column}")
    _undo_outbox_migration(store_url)  # migration 7, re-applied after 4
    for table in (*MIGRATION_9_TABLES, *MIGRATION_8_TABLES):  # migrations 9, 8 likewise
        raw_execute(store_url, f"DROP TABLE {table}")
    _undo_funnel_migration(store_url)  # migration 10, likewise
    raw_execute(store_url, "DELETE FROM schema_version WHERE version >= 4")
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        after = store.ledger().entries
        assert [(e.seq, e.event, e.detail) for e in after] == [
            (e.seq, e.event, e.detail) for e in before
        ]
        store.set_user_cap(UserCap("points", 2, timedelta(days=1)), actor="ops")
        last = store.ledger().entries[-1]
        assert (last.event.value, last.actor, last.seq > after[-1].seq) == ("cap_set", "ops", True)
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        raw_execute(store_url, "DELETE FROM ledger")


_DAILY_SQL = (
    "SELECT day, endpoint, outcome, error_code, category, platform, os_version, app_version,"
    " sdk_version, calls, failures, first_seen, last_seen FROM event_rollups_daily"
    " ORDER BY day, outcome"
)


def test_migration_9_backfills_the_daily_rollups_from_the_minute_rollups(store_url: str) -> None:
    # A version 8 database with events over two days; migration 9 sums their minute
    # rollups per UTC day: the very rows the ingest itself writes.
    day = datetime(2026, 3, 1, tzinfo=UTC)
    records = [
        EventRecord(
            event_id=f"e{index}", ts=day + timedelta(hours=index * 7), outcome=outcome,
            endpoint="POST /pay", source="client", os_version="17.2",
            error_code="E1" if outcome == "error" else None, count=2,
        )
        for index, outcome in enumerate(("ok", "error", "ok", "error", "error"))
    ]  # fmt: skip
    with open_store(store_url) as store:
        store.ingest_events(records)
    written = raw_rows(store_url, _DAILY_SQL)
    day_us = int(day.timestamp()) * 1_000_000
    hour_us = 3_600_000_000
    assert [tuple(row[:3]) + tuple(row[9:]) for row in written] == [
        (day_us, "POST /pay", "error", 4, 4, day_us + 7 * hour_us, day_us + 21 * hour_us),
        (day_us, "POST /pay", "ok", 4, 0, day_us, day_us + 14 * hour_us),
        (day_us + 24 * hour_us, "POST /pay", "error", 2, 2, day_us + 28 * hour_us,
         day_us + 28 * hour_us),
    ]  # fmt: skip
    for table in MIGRATION_9_TABLES:
        raw_execute(store_url, f"DROP TABLE {table}")
    _undo_funnel_migration(store_url)  # migration 10, re-applied after 9
    raw_execute(store_url, "DELETE FROM schema_version WHERE version >= 9")
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
    assert raw_rows(store_url, _DAILY_SQL) == written


def test_migration_10_adds_the_funnel_columns_and_outcome_events(store_url: str) -> None:
    # A version-9 database with an issued token: the
    # token keeps its data, reads with no grade, segment or shown_at, and can be shown.
    with open_store(store_url) as store:
        store.set_budget("coupon", "*", 100, unit="USD_cent")
    _undo_funnel_migration(store_url)
    raw_execute(store_url, "DELETE FROM schema_version WHERE version >= 10")
    raw_execute(
        store_url,
        "INSERT INTO issued_tokens (jti, subject, issuer, kind, amount, unit, campaign,"
        " expires_at, alert_id, token, created_at) VALUES ('old', 'alice', 'iss', 'coupon',"
        " 5, 'USD_cent', 'coupon', 4102444800000000, 'alert-old', 'a.b.c', 0)",
    )
    with open_store(store_url) as store:
        assert store.schema_version() == LATEST_VERSION
        old = store.alert("alert-old")
        assert old is not None
        assert (old.severity, old.segment, old.shown_at) == (None, None, None)
        assert store.mark_shown("alert-old") is True
        assert store.mark_shown("alert-old") is False  # once
        shown = store.alert("alert-old")
        assert shown is not None and shown.shown_at is not None
        (row,) = store.funnel_rows(
            datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)
        )
        assert (row.issued, row.shown, row.severity, row.unit) == (1, 1, None, "USD_cent")
    raw_execute(
        store_url,
        "INSERT INTO outcome_events (event_id, ts, name, user_id, value, extensions,"
        " received_at) VALUES ('e1', 0, 'purchase', 'alice', '9.5', '{}', 0)",
    )
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        raw_execute(
            store_url,
            "INSERT INTO outcome_events (event_id, ts, name, user_id, value, extensions,"
            " received_at) VALUES ('e1', 1, 'purchase', 'bob', 'null', '{}', 0)",
        )
