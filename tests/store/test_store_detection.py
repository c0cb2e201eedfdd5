"""Detection records in both stores: the exclusive lock, exactly-once automatic
compensations (key, tokens, ledger in one transaction), budgets, incidents' ledger rows
and their outbox events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema

from server_stub.store import (
    AutoCompensation,
    AutoDuplicate,
    AutoRecorded,
    IncidentRecord,
    IssuedToken,
    open_store,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
REACH = Path(__file__).resolve().parents[2] / "docs" / "reach.md"


def event_schema() -> dict[str, Any]:
    """The payloads' JSON Schema as docs/reach.md publishes it."""
    text = REACH.read_text(encoding="utf-8").split("JSON Schema (draft 2020-12)", 1)[1]
    schema: dict[str, Any] = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    return schema


def token(jti: str, subject: str = "u1", amount: int = 30) -> IssuedToken:
    return IssuedToken(
        jti=jti, subject=subject, issuer="iss", kind="membership_extension", amount=amount,
        unit="days", campaign="membership_extension",
        expires_at=datetime.now(UTC) + timedelta(days=30), alert_id="alert-" + jti, token="a.b.c",
    )  # fmt: skip


def decision(user: str = "u1", ref: str = "ep_1", status: str = "issued") -> AutoCompensation:
    return AutoCompensation(
        user_id=user, reason="episode", ref=ref, status=status, why=None,  # type: ignore[arg-type]
        severity="moderate", kind="membership_extension", amount=30, unit="days",
        decided_at=NOW,
    )  # fmt: skip


def feed_incident() -> tuple[IncidentRecord, list[tuple[str, datetime, str, int, datetime]]]:
    """An automatic incident on GET /api/feed, and its close (end +7 min, 20 users)."""
    incident = IncidentRecord(
        id="inc_1", scope=("GET /api/feed",), start=NOW, end=None, severity=None,
        manual=False, state="open", affected_users=None, declared_at=NOW,
    )  # fmt: skip
    return incident, [
        ("inc_1", NOW + timedelta(minutes=7), "minor", 20, NOW + timedelta(minutes=17))
    ]


def test_the_exclusive_lock_is_held_by_one_store_at_a_time(store_url: str) -> None:
    with open_store(store_url) as one, open_store(store_url) as two:
        with one.try_exclusive(7) as first:
            with two.try_exclusive(7) as second:
                assert (first, second) == (True, False)
            with two.try_exclusive(8) as other_key:
                assert other_key
        with two.try_exclusive(7) as again:
            assert again


def test_an_automatic_compensation_is_recorded_once_with_its_token_and_ledger_row(
    store_url: str,
) -> None:
    with open_store(store_url) as store:
        first = store.record_auto_compensation(decision(), [token("j1")])
        assert isinstance(first, AutoRecorded) and first.compensation.jti == "j1"
        again = store.record_auto_compensation(decision(), [token("j2")])
        assert isinstance(again, AutoDuplicate)
        issued = [e for e in store.ledger().entries if e.event.value == "issued"]
        assert [(e.jti, e.detail["reason"], e.detail["ref"]) for e in issued] == [
            ("j1", "episode", "ep_1")
        ]
        (mine,) = store.user_compensations("u1")
        assert (mine.jti, mine.reason, mine.ref, mine.redeemed) == ("j1", "episode", "ep_1", False)
        assert store.compensations("u1").pending[0].jti == "j1"


def test_a_budget_issues_up_to_its_remaining_amount_then_refuses(store_url: str) -> None:
    with open_store(store_url) as store:
        store.set_budget("membership_extension", "*", 60, unit="days")
        outcomes = [
            store.record_auto_compensation(decision(f"u{n}", f"ep_{n}"), [token(f"j{n}", f"u{n}")])
            for n in range(3)
        ]
        statuses = [o.compensation.status for o in outcomes if isinstance(o, AutoRecorded)]
        assert statuses == ["issued", "issued", "refused"]
        refused = store.auto_compensations(status="refused")
        assert [(r.user_id, r.why, r.jti) for r in refused] == [
            ("u2", "budget membership_extension/*", None)
        ]
        assert store.user_compensations("u2") == []


def test_incident_ledger_rows_are_written_once(store_url: str) -> None:
    incident, closed = feed_incident()
    with open_store(store_url) as store:
        assert store.record_detection(opened=[incident], closed=closed) == (1, 1)
        assert store.record_detection(opened=[incident], closed=closed) == (0, 0)
        events = [e.event.value for e in store.ledger().entries]
        assert events == ["incident_opened", "incident_closed"]
        (found,) = store.incidents()
        assert (found.state, found.severity, found.affected_users) == ("closed", "minor", 20)


def test_an_incident_writes_its_opened_and_closed_events_once(store_url: str) -> None:
    incident, closed = feed_incident()
    with open_store(store_url) as store:
        store.record_detection(opened=[incident])
        store.record_detection(opened=[incident], closed=closed)
        store.record_detection(opened=[incident], closed=closed)  # another replica's run
        opened, done = store.outbox_events()
        assert (opened.type, done.type) == ("incident.opened", "incident.closed")
        assert opened.payload["type"] == "incident.opened"
        assert opened.payload["data"] == {
            "incident": "inc_1", "scope": ["GET /api/feed"], "scope_total": 1, "manual": False,
            "start": "2026-03-01T12:00:00Z", "end": None, "severity": None,
            "affected_users": None, "opened_at": opened.payload["timestamp"],
        }  # fmt: skip
        assert done.payload["data"] == {
            "incident": "inc_1", "scope": ["GET /api/feed"], "scope_total": 1, "manual": False,
            "start": "2026-03-01T12:00:00Z", "end": "2026-03-01T12:07:00Z",
            "severity": "minor", "affected_users": 20, "closed_at": done.payload["timestamp"],
        }  # fmt: skip
        validator = jsonschema.Draft202012Validator(
            event_schema(), format_checker=jsonschema.FormatChecker()
        )
        for event in (opened, done):
            validator.validate(event.payload)
        with_open_end = {**done.payload, "data": {**done.payload["data"], "end": None}}
        assert not validator.is_valid(with_open_end)  # a closed incident has an end


def test_a_declared_incident_writes_its_event_in_the_declaration(store_url: str) -> None:
    declared = IncidentRecord(
        id="inc_m", scope=("*",), start=NOW, end=NOW + timedelta(hours=1), severity=None,
        manual=True, state="open", affected_users=None, declared_at=NOW,
    )  # fmt: skip
    with open_store(store_url) as store:
        assert store.declare_incident(declared)[0]
        assert not store.declare_incident(declared)[0]
        (event,) = store.outbox_events()
        data = event.payload["data"]
        assert (event.type, data["scope"], data["manual"], data["end"]) == (
            "incident.opened", ["*"], True, "2026-03-01T13:00:00Z"
        )  # fmt: skip


def test_a_huge_declared_scope_is_listed_in_part_and_counted(store_url: str) -> None:
    scope = tuple(f"GET /api/{n:04d}/" + "x" * 240 for n in range(1000))
    declared = IncidentRecord(
        id="inc_big", scope=scope, start=NOW, end=None, severity=None, manual=True,
        state="open", affected_users=None, declared_at=NOW,
    )  # fmt: skip
    with open_store(store_url) as store:
        assert store.declare_incident(declared)[0]
        (event,) = store.outbox_events()
        data = event.payload["data"]
        assert data["scope_total"] == 1000
        assert 0 < len(data["scope"]) < 1000 and data["scope"] == list(scope[: len(data["scope"])])
