"""The store's business rules, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from server_stub.store import (
    AlreadyRedeemed,
    AlreadyReversed,
    BudgetExhausted,
    Grant,
    InventoryExhausted,
    IssuedToken,
    LedgerEvent,
    Redeemed,
    RedemptionNotFound,
    RedemptionRequest,
    Reversed,
    Store,
    StoreError,
    StoreInputError,
    UserCap,
    UserCapReached,
    open_store,
)
from tests.conftest import FakeClock
from tests.support.store_support import raw_execute, request


def redeemed(outcome: object) -> Redeemed:
    assert isinstance(outcome, Redeemed), outcome
    return outcome


def events(store: Store, **filters: object) -> list[LedgerEvent]:
    return [entry.event for entry in store.ledger(**filters).entries]  # type: ignore[arg-type]


# -- exactly once -------------------------------------------------------------


def test_a_jti_is_redeemed_once_and_the_replay_names_the_first(store: Store) -> None:
    first = redeemed(store.redeem(request("j1", subject="alice", amount=7)))
    again = store.redeem(request("j1", subject="mallory", amount=7))
    assert isinstance(again, AlreadyRedeemed)
    assert again.redemption == first.redemption
    assert again.redemption.subject == "alice"
    assert events(store) == [LedgerEvent.REDEEMED]


def test_a_redemption_records_the_request(store: Store, clock: FakeClock) -> None:
    expires = datetime(2030, 2, 1, tzinfo=UTC)
    req = RedemptionRequest(
        jti="j1",
        subject="alice",
        issuer="https://api.example.com",
        kind="days",
        amount=3,
        unit="days",
        campaign="incident-9",
        expires_at=expires,
    )
    made = redeemed(store.redeem(req)).redemption
    assert made.id.startswith("rdm_")
    assert (made.jti, made.subject, made.issuer, made.kind) == (
        "j1",
        "alice",
        "https://api.example.com",
        "days",
    )
    assert made.grant == Grant(amount=3, unit="days")
    assert made.redeemed_at == clock.now
    assert made.expires_at == expires
    assert made.reversed_at is None
    assert store.redemption(made.id) == made
    assert store.redemption_by_jti("j1") == made
    assert store.redemption("rdm_unknown") is None
    (entry,) = store.ledger().entries
    assert (entry.subject, entry.jti, entry.redemption_id, entry.amount) == (
        "alice",
        "j1",
        made.id,
        3,
    )
    assert entry.detail["campaign"] == "incident-9"


# -- budgets --------------------------------------------------------------------


def test_without_a_budget_redemptions_are_unlimited(store: Store) -> None:
    redeemed(store.redeem(request("j1", amount=2**40)))
    assert store.budgets() == []


def test_a_budget_is_drawn_down_exactly_and_refusals_change_nothing(store: Store) -> None:
    store.set_budget("points", "incident-1", 5, unit="points")
    redeemed(store.redeem(request("j1", amount=2)))
    redeemed(store.redeem(request("j2", amount=2)))
    refused = store.redeem(request("j3", amount=2))
    assert refused == BudgetExhausted(
        kind="points", campaign="incident-1", remaining=1, unit="points"
    )
    budget = store.budget("points", "incident-1")
    assert budget is not None
    assert (budget.total, budget.remaining) == (5, 1)
    # The refused jti is not burnt: no row, no ledger entry; it redeems once funds exist.
    assert store.redemption_by_jti("j3") is None
    assert events(store).count(LedgerEvent.REDEEMED) == 2
    store.set_budget("points", "incident-1", 7, unit="points")
    redeemed(store.redeem(request("j3", amount=2)))
    assert store.budget("points", "incident-1").remaining == 1  # type: ignore[union-attr]


def test_the_campaign_budget_wins_over_the_kind_wide_one(store: Store) -> None:
    store.set_budget("points", "*", 100, unit="points")
    store.set_budget("points", "incident-1", 10, unit="points")
    redeemed(store.redeem(request("j1", amount=4, campaign="incident-1")))
    redeemed(store.redeem(request("j2", amount=4, campaign="incident-2")))
    assert store.budget("points", "incident-1").remaining == 6  # type: ignore[union-attr]
    assert store.budget("points", "*").remaining == 96  # type: ignore[union-attr]


def test_an_exhausted_campaign_budget_does_not_fall_back_to_the_kind_wide_one(
    store: Store,
) -> None:
    store.set_budget("points", "*", 100, unit="points")
    store.set_budget("points", "incident-1", 3, unit="points")
    refused = store.redeem(request("j1", amount=4, campaign="incident-1"))
    assert refused == BudgetExhausted(
        kind="points", campaign="incident-1", remaining=3, unit="points"
    )
    assert store.budget("points", "*").remaining == 100  # type: ignore[union-attr]
    assert store.redemption_by_jti("j1") is None


def test_a_budget_in_another_unit_refuses(store: Store) -> None:
    store.set_budget("credit", "incident-1", 1000, unit="EUR_cent")
    refused = store.redeem(request("j1", kind="credit", amount=5, unit="USD_cent"))
    assert isinstance(refused, BudgetExhausted)
    assert refused.unit == "EUR_cent"
    assert store.budget("credit", "incident-1").remaining == 1000  # type: ignore[union-attr]


def test_resizing_a_budget_keeps_what_was_spent(store: Store) -> None:
    store.set_budget("points", "incident-1", 10, unit="points")
    redeemed(store.redeem(request("j1", amount=6)))
    assert store.set_budget("points", "incident-1", 20, unit="points").remaining == 14
    assert store.set_budget("points", "incident-1", 4, unit="points").remaining == 0
    with pytest.raises(StoreInputError):
        store.set_budget("points", "incident-1", 4, unit="days")
    assert events(store).count(LedgerEvent.BUDGET_SET) == 3


# -- inventory ------------------------------------------------------------------


def test_codes_load_deduplicated_and_are_handed_out_in_order(store: Store) -> None:
    load = store.load_codes("coupon", ["AAA", "BBB", "AAA", "CCC"])
    assert (load.added, load.duplicates, load.remaining) == (3, 1, 3)
    again = store.load_codes("coupon", ["CCC", "DDD"])
    assert (again.added, again.duplicates, again.remaining) == (1, 1, 4)
    codes = [
        redeemed(store.redeem(request(f"j{i}", kind="coupon", unit="percent"))).redemption.grant
        for i in range(4)
    ]
    assert [grant.coupon_code for grant in codes] == ["AAA", "BBB", "CCC", "DDD"]
    assert store.redeem(request("j9", kind="coupon", unit="percent")) == InventoryExhausted(
        pool="coupon"
    )
    pool = store.code_pool("coupon")
    assert pool is not None
    assert (pool.total, pool.remaining) == (4, 0)


def test_an_empty_pool_refuses_without_spending_the_budget(store: Store) -> None:
    store.set_budget("coupon", "*", 10, unit="percent")
    store.load_codes("incident-1", ["ONLY"])
    redeemed(store.redeem(request("j1", kind="coupon", unit="percent", amount=3)))
    assert isinstance(
        store.redeem(request("j2", kind="coupon", unit="percent", amount=3)), InventoryExhausted
    )
    assert store.budget("coupon", "*").remaining == 7  # type: ignore[union-attr]
    assert store.redemption_by_jti("j2") is None


def test_the_campaign_pool_wins_and_no_pool_means_no_code(store: Store) -> None:
    store.load_codes("coupon", ["GENERIC"])
    store.load_codes("incident-7", ["SPECIFIC"])
    special = redeemed(store.redeem(request("j1", kind="coupon", campaign="incident-7")))
    generic = redeemed(store.redeem(request("j2", kind="coupon", campaign="incident-8")))
    assert special.redemption.grant.coupon_code == "SPECIFIC"
    assert generic.redemption.grant.coupon_code == "GENERIC"
    points = redeemed(store.redeem(request("j3", kind="points", campaign="incident-7")))
    assert points.redemption.grant.coupon_code is None


# -- per-subject caps -------------------------------------------------------------


def test_a_cap_limits_each_subject_per_period(store: Store, clock: FakeClock) -> None:
    store.set_user_cap(UserCap(scope="*", max_redemptions=2, period=timedelta(days=1)))
    redeemed(store.redeem(request("j1", subject="alice")))
    redeemed(store.redeem(request("j2", subject="alice", kind="days", unit="days")))
    refused = store.redeem(request("j3", subject="alice"))
    assert refused == UserCapReached(
        subject="alice",
        scope="*",
        max_redemptions=2,
        resets_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    redeemed(store.redeem(request("j4", subject="bob")))
    clock.advance(timedelta(hours=12))
    redeemed(store.redeem(request("j3", subject="alice")))


def test_a_cap_can_apply_to_one_kind(store: Store) -> None:
    store.set_user_cap(UserCap(scope="coupon", max_redemptions=0, period=timedelta(days=30)))
    assert isinstance(store.redeem(request("j1", kind="coupon")), UserCapReached)
    redeemed(store.redeem(request("j2", kind="points")))
    assert [cap.scope for cap in store.user_caps()] == ["coupon"]
    assert store.remove_user_cap("coupon")
    redeemed(store.redeem(request("j1", kind="coupon")))


def test_a_cap_of_zero_refuses_without_counting(store: Store) -> None:
    store.set_user_cap(UserCap(scope="*", max_redemptions=0, period=timedelta(days=1)))
    assert isinstance(store.redeem(request("j1", subject="alice")), UserCapReached)
    # Had the refusal counted, raising the cap to 1 would still refuse alice.
    store.set_user_cap(UserCap(scope="*", max_redemptions=1, period=timedelta(days=1)))
    redeemed(store.redeem(request("j1", subject="alice")))
    assert isinstance(store.redeem(request("j2", subject="alice")), UserCapReached)


# -- reversal -------------------------------------------------------------------


def test_reversal_restores_budget_and_cap_voids_the_code_and_keeps_history(
    store: Store, clock: FakeClock
) -> None:
    store.set_budget("coupon", "*", 10, unit="percent")
    store.load_codes("coupon", ["C1", "C2"])
    store.set_user_cap(UserCap(scope="*", max_redemptions=1, period=timedelta(days=1)))
    made = redeemed(store.redeem(request("j1", kind="coupon", unit="percent", amount=4)))
    clock.advance(timedelta(minutes=5))
    outcome = store.reverse(made.redemption.id, "duplicate incident")
    assert isinstance(outcome, Reversed)
    assert outcome.redemption.reversed_at == clock.now
    assert outcome.redemption.reversal_reason == "duplicate incident"
    assert store.budget("coupon", "*").remaining == 10  # type: ignore[union-attr]
    # The code was disclosed, so it is voided, not handed to the next subject.
    assert store.code_pool("coupon").remaining == 1  # type: ignore[union-attr]
    assert store.redemption(made.redemption.id) == outcome.redemption
    # The jti stays spent; the cap slot is given back.
    assert isinstance(store.redeem(request("j1", kind="coupon", unit="percent")), AlreadyRedeemed)
    second = redeemed(store.redeem(request("j2", kind="coupon", unit="percent", amount=4)))
    assert second.redemption.grant.coupon_code == "C2"
    (entry,) = [e for e in store.ledger().entries if e.event == LedgerEvent.REVERSED]
    assert entry.redemption_id == made.redemption.id
    assert entry.detail["reason"] == "duplicate incident"
    assert entry.detail["code_voided"] is True


def test_redemption_ids_are_unique_and_sort_by_time(store: Store, clock: FakeClock) -> None:
    ids = []
    for index in range(5):
        ids.append(redeemed(store.redeem(request(f"j{index}"))).redemption.id)
        clock.advance(timedelta(microseconds=1))
    ids.append(redeemed(store.redeem(request("same-microsecond"))).redemption.id)
    assert all(made.startswith("rdm_") for made in ids)
    assert len(set(ids)) == 6
    assert sorted(ids[:5]) == ids[:5]


def test_reversing_twice_or_an_unknown_id_is_a_typed_outcome(store: Store) -> None:
    made = redeemed(store.redeem(request("j1")))
    assert isinstance(store.reverse(made.redemption.id, "first"), Reversed)
    again = store.reverse(made.redemption.id, "second")
    assert isinstance(again, AlreadyReversed)
    assert again.redemption.reversal_reason == "first"
    assert store.reverse("rdm_nope", "x") == RedemptionNotFound(redemption_id="rdm_nope")
    assert events(store).count(LedgerEvent.REVERSED) == 1


def test_reversal_never_lifts_a_budget_above_its_total(store: Store) -> None:
    store.set_budget("points", "incident-1", 10, unit="points")
    made = redeemed(store.redeem(request("j1", amount=6)))
    store.set_budget("points", "incident-1", 5, unit="points")  # spent 6 > 5: remaining 0
    store.reverse(made.redemption.id, "refund")
    budget = store.budget("points", "incident-1")
    assert budget is not None
    assert (budget.total, budget.remaining) == (5, 5)


# -- ledger ---------------------------------------------------------------------


def test_the_ledger_filters_by_subject_and_time_and_pages(store: Store, clock: FakeClock) -> None:
    start = clock.now
    for index in range(5):
        store.redeem(request(f"a{index}", subject="alice"))
        store.redeem(request(f"b{index}", subject="bob"))
        clock.advance(timedelta(minutes=1))
    alice = store.ledger(subject="alice").entries
    assert [entry.jti for entry in alice] == [f"a{i}" for i in range(5)]
    window = store.ledger(since=start + timedelta(minutes=1), until=start + timedelta(minutes=3))
    assert [entry.jti for entry in window.entries] == ["a1", "b1", "a2", "b2"]
    seen: list[str | None] = []
    cursor: int | None = None
    while True:
        page = store.ledger(after=cursor, limit=3)
        seen.extend(entry.jti for entry in page.entries)
        assert len(page.entries) <= 3
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [entry.jti for entry in store.ledger().entries]
    assert len(seen) == 10


def test_the_ledger_is_append_only_in_the_database(store: Store, store_url: str) -> None:
    store.redeem(request("j1"))
    for statement in ("UPDATE ledger SET amount = 0", "DELETE FROM ledger"):
        with pytest.raises(Exception, match="append-only"):
            raw_execute(store_url, statement)
    (entry,) = store.ledger().entries
    assert entry.amount == 1


# -- issued tokens, alerts, compensations -------------------------------------------


def issued(jti: str, clock: FakeClock, *, subject: str = "alice", hours: int = 24) -> IssuedToken:
    return IssuedToken(
        jti=jti,
        subject=subject,
        issuer="https://api.example.com",
        kind="points",
        amount=1,
        unit="points",
        campaign="incident-1",
        expires_at=clock.now + timedelta(hours=hours),
        alert_id="alert-" + jti,
        token="eyJhbGciOiJFUzI1NiJ9.secret-token." + jti,
    )


def test_issued_tokens_feed_alerts_and_pending_compensations(
    store: Store, clock: FakeClock
) -> None:
    assert store.record_issued(issued("t1", clock))
    assert store.record_issued(issued("t2", clock))
    assert store.record_issued(issued("t3", clock, hours=1))
    assert store.record_issued(issued("t4", clock, subject="bob"))
    assert not store.record_issued(issued("t1", clock))
    found = store.alert("alert-t1")
    assert found is not None
    assert found.jti == "t1"
    assert found.token.endswith(".t1")
    assert "secret-token" not in repr(found)
    assert store.alert("alert-none") is None
    redeemed(store.redeem(request("t2")))
    clock.advance(timedelta(hours=2))
    compensations = store.compensations("alice")
    assert [r.jti for r in compensations.redeemed] == ["t2"]
    assert [t.jti for t in compensations.pending] == ["t1"]  # t3 expired, t4 is bob's
    assert events(store).count(LedgerEvent.ISSUED) == 4


def test_issued_tokens_keep_the_providers_texts_per_language(
    store: Store, clock: FakeClock
) -> None:
    message = {"en": "Insufficient balance.", "zh-CN": "银行卡余额不足"}
    token = attrs.evolve(issued("t1", clock), message=message, suggestion={"und": "Top up"})
    assert store.record_issued(token)
    found = store.alert("alert-t1")
    assert found is not None
    assert dict(found.message) == message
    assert list(found.message) == ["en", "zh-CN"]
    assert dict(found.suggestion) == {"und": "Top up"}
    assert dict(store.compensations("alice").pending[0].message) == message
    with pytest.raises(TypeError):
        found.message["en"] = "changed"  # type: ignore[index]  # read-only mapping


@pytest.mark.parametrize(
    "texts",
    [
        {"en": "x" * 1001},
        {"en": "line\nbreak"},
        {"": "no tag"},
        {f"l{i}": "many" for i in range(9)},
    ],
)
def test_bad_provider_texts_are_refused_and_nothing_is_recorded(
    store: Store, clock: FakeClock, texts: dict[str, str]
) -> None:
    with pytest.raises(StoreInputError):
        store.record_issued(attrs.evolve(issued("t1", clock), message=texts))
    assert store.alert("alert-t1") is None


# -- bad input and infrastructure failures -------------------------------------------


def test_compensations_list_each_redemption_of_the_subject_once_newest_first(
    store: Store, clock: FakeClock
) -> None:
    first = redeemed(store.redeem(request("j1", subject="alice"))).redemption
    clock.advance(timedelta(minutes=1))
    redeemed(store.redeem(request("j2", subject="bob")))
    store.record_issued(issued("j3", clock))
    clock.advance(timedelta(minutes=1))
    redeemed(store.redeem(request("j3", subject="alice")))
    # A reversal adds a second ledger row for j1's subject; j1 is still listed once.
    store.reverse(first.id, "refund")
    listed = store.compensations("alice").redeemed
    assert [r.jti for r in listed] == ["j3", "j1"]
    assert listed[1].reversal_reason == "refund"


@pytest.mark.parametrize(
    "bad",
    [
        {"jti": ""},
        {"jti": "x" * 129},
        {"subject": "alice\nbob"},
        {"amount": 0},
        {"amount": -5},
        {"amount": True},
        {"amount": 2**60},
        {"kind": 3},
    ],
)
def test_bad_requests_are_refused_before_the_database(store: Store, bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "jti": "j1",
        "subject": "alice",
        "issuer": "iss",
        "kind": "points",
        "amount": 1,
        "unit": "points",
        "campaign": "c",
    }
    fields.update(bad)
    with pytest.raises(StoreInputError):
        store.redeem(RedemptionRequest(**fields))  # type: ignore[arg-type]
    assert store.ledger().entries == ()


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreInputError):
        store.ledger(since=datetime(2030, 1, 1))


def test_an_unopenable_sqlite_file_is_a_store_error(tmp_path: object) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{tmp_path}/missing-dir/x.db")
    assert not isinstance(caught.value.__cause__, StoreError)


def test_lone_surrogates_are_input_errors_not_driver_crashes(store: Store) -> None:
    lone = "x\ud800"
    calls = [
        lambda: store.set_budget("points", lone, 1, unit="points"),
        lambda: store.set_budget("points", "c", 1, unit=lone),
        lambda: store.load_codes("coupon", ["A-1", lone]),
        lambda: store.redeem(request("j-lone", subject=lone)),
        lambda: store.ledger(subject=lone),
        lambda: store.compensations(lone),
    ]
    for call in calls:
        with pytest.raises(StoreInputError, match="surrogate"):
            call()
    outcome = store.redeem(request("j-ok"))
    with pytest.raises(StoreInputError, match="surrogate"):
        store.reverse(outcome.redemption.id, lone)  # type: ignore[union-attr]
    assert store.ledger().entries[-1].event.value == "redeemed"
