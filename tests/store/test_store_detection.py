"""Detection records in both stores: the exclusive lock, exactly-once automatic
compensations (key, tokens, ledger in one transaction), budgets, incidents' ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server_stub.store import (
    AutoCompensation,
    AutoDuplicate,
    AutoRecorded,
    IncidentRecord,
    IssuedToken,
    open_store,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


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
    incident = IncidentRecord(
        id="inc_1", scope=("GET /api/feed",), start=NOW, end=None, severity=None,
        manual=False, state="open", affected_users=None, declared_at=NOW,
    )  # fmt: skip
    closed = [("inc_1", NOW + timedelta(minutes=7), "minor", 20, NOW + timedelta(minutes=17))]
    with open_store(store_url) as store:
        assert store.record_detection(opened=[incident], closed=closed) == (1, 1)
        assert store.record_detection(opened=[incident], closed=closed) == (0, 0)
        events = [e.event.value for e in store.ledger().entries]
        assert events == ["incident_opened", "incident_closed"]
        (found,) = store.incidents()
        assert (found.state, found.severity, found.affected_users) == ("closed", "minor", 20)
