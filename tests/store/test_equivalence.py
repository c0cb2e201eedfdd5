"""SQLite (the Python transaction) and PostgreSQL (the server-side batch) agree exactly.

The same scenarios run on both stores with the same fake clock; the responses (status,
and body JSON without ids and timestamps) and the resulting rows (ledger, redemptions,
budgets, caps' usage, coupon codes, idempotency records) must be identical, stored
JSON texts byte for byte. Redemption ids are random, so rows are compared by jti.
Unkeyed redemptions (no Idempotency-Key: `Store.redeem`, or a bare request in a batch)
get the same comparison.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from server_stub.domain._render import redemption_response
from server_stub.store import (
    InFlight,
    KeyedOutcome,
    KeyedRedemption,
    Mismatch,
    RedeemOutcome,
    RedemptionRequest,
    Replay,
    Store,
    StoreInputError,
    UserCap,
    open_store,
)
from server_stub.store._migrations import installed_by
from server_stub.store._pg_functions import REDEEM_BATCH_FUNCTION
from tests.conftest import FakeClock, _with_database
from tests.support.store_support import request

pytestmark = pytest.mark.postgres

Scenario = Callable[[Store, FakeClock], list[Any]]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    import psycopg

    database = request.getfixturevalue("postgres_database")
    schema = f"eq_{secrets.token_hex(6)}"
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return _with_database(database, urllib.parse.urlsplit(database).path[1:], schema=schema)


@pytest.fixture
def stores(tmp_path: Any, pg_url: str) -> Iterator[tuple[Store, Store, FakeClock, FakeClock]]:
    lite_clock, pg_clock = FakeClock(), FakeClock()
    with (
        open_store(
            f"sqlite:///{tmp_path}/eq.db", clock=lite_clock, render=redemption_response
        ) as lite,
        open_store(pg_url, clock=pg_clock, render=redemption_response) as pg,
    ):
        assert (lite.backend, pg.backend) == ("sqlite", "postgresql")
        yield lite, pg, lite_clock, pg_clock


def keyed(jti: str, key: str, *, token: str | None = None, **fields: Any) -> KeyedRedemption:
    subject = fields.get("subject", "alice")
    return KeyedRedemption(request(jti, **fields), "redeem:" + subject, key, "fp-" + (token or jti))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("id", "redeemed_at")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def response_of(result: KeyedOutcome | RedeemOutcome | StoreInputError) -> Any:
    """What the route would answer: status and body JSON (ids and timestamps removed)."""
    if isinstance(result, StoreInputError):
        return ("input", str(result))
    if isinstance(result, Replay):
        return ("replay", result.status, _strip(json.loads(result.body)))
    if isinstance(result, Mismatch):
        return ("mismatch",)
    if isinstance(result, InFlight):
        return ("in_flight", result.locked_until)
    rendered = redemption_response(result)
    return (type(result).__name__, rendered.status, _strip(json.loads(rendered.body)))


def rows_of(store: Store) -> dict[str, list[Any]]:
    def read(sql: str) -> list[dict[str, Any]]:
        return store._dialect.run(lambda tx: tx.all(sql), write=False)

    jti_of = {r["id"]: r["jti"] for r in read("SELECT id, jti FROM redemptions")}
    redemptions = [
        {**r, "id": None}
        for r in read(
            "SELECT id, jti, subject, issuer, kind, amount, unit, campaign, grant_json,"
            " budget_campaign, cap_usage, idempotency_key, expires_at, redeemed_at,"
            " reversed_at, reversal_reason FROM redemptions ORDER BY jti"
        )
    ]
    ledger = [
        {**r, "redemption_id": jti_of.get(r["redemption_id"])}
        for r in read(
            "SELECT seq, at, event, subject, jti, redemption_id, kind, amount, unit, detail,"
            " actor FROM ledger ORDER BY seq"
        )
    ]
    idempotency = [
        {**r, "body": None if r["body"] is None else _strip(json.loads(bytes(r["body"])))}
        for r in read(
            "SELECT scope, key, fingerprint, state, locked_at, status, body, created_at,"
            " expires_at FROM idempotency_keys ORDER BY scope, key"
        )
    ]
    codes = [
        {**r, "redemption_id": jti_of.get(r["redemption_id"])}
        for r in read("SELECT pool, code, redemption_id, voided_at FROM coupon_codes ORDER BY code")
    ]
    return {
        "redemptions": redemptions,
        "ledger": ledger,
        "idempotency": idempotency,
        "codes": codes,
        "budgets": read("SELECT * FROM budgets ORDER BY kind, campaign"),
        "pools": read("SELECT * FROM code_pools ORDER BY pool"),
        "usage": read("SELECT * FROM subject_usage ORDER BY subject, scope, window_start"),
    }


def setup(store: Store) -> None:
    store.set_budget("points", "*", 250, unit="points", actor="ops")
    store.set_budget("points", "incident-2", 5, unit="points", actor="ops")
    store.set_user_cap(UserCap("retry_chance", 1, timedelta(days=1)), actor="ops")
    store.load_codes("coupon", ["C1"], actor="ops")


def one_by_one(store: Store, clock: FakeClock) -> list[Any]:
    """Every outcome through redeem_idempotent (a batch of one on PostgreSQL)."""
    setup(store)
    out: list[Any] = []

    def redeem(item: KeyedRedemption) -> None:
        out.append(
            response_of(
                store.redeem_idempotent(
                    item.request, scope=item.scope, key=item.key, fingerprint=item.fingerprint
                )
            )
        )

    redeem(keyed("j1", "k1", amount=100))  # new
    redeem(keyed("j1", "k1", amount=100))  # replayed
    redeem(keyed("j2", "k1", amount=100))  # key reused with another token
    redeem(keyed("j1", "k2", amount=100))  # jti reused under another key
    redeem(keyed("j3", "k3", subject="bob", kind="retry_chance", unit="days"))  # within cap
    redeem(keyed("j4", "k4", subject="bob", kind="retry_chance", unit="days"))  # user cap
    redeem(keyed("j5", "k5", subject="carol", amount=200))  # budget exhausted (150 left)
    redeem(keyed("j6", "k6", amount=6, campaign="incident-2"))  # campaign budget: 5
    redeem(keyed("j7", "k7", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"))
    redeem(keyed("j8", "k8", kind="coupon", unit="USD_cent", amount=500, campaign="x"))  # empty
    redeem(keyed("j9", "k9", kind="trial_extension", unit="days", amount=7))  # unlimited
    redeem(keyed("j10", "k10", amount=4, unit="USD_cent"))  # another unit: exhausted
    first = store.redemption_by_jti("j1")
    assert first is not None
    clock.advance(timedelta(seconds=3))
    out.append(type(store.reverse(first.id, "refund", actor="ops")).__name__)
    out.append(type(store.reverse(first.id, "again", actor="ops")).__name__)
    redeem(keyed("j1", "k1", amount=100))  # replay after the reversal: the original grant
    redeem(keyed("j11", "k11", subject="dave", amount=150))  # the restored budget pays
    clock.advance(timedelta(hours=25))  # every key expired
    redeem(keyed("j12", "k1", amount=1))  # an expired key starts afresh
    return out


def batched(store: Store, clock: FakeClock) -> list[Any]:
    """The same kinds of outcome inside one group-committed batch, neighbours included."""
    setup(store)
    first = store.redeem_idempotent_batch([keyed("a0", "ka0", subject="zed", amount=10)])
    batch = [
        keyed("b1", "kb1", amount=100),  # new
        keyed("b1", "kb1", amount=100),  # the same request again: replays its neighbour
        keyed("b2", "kb1", amount=100),  # its key with another token
        keyed("b1", "kb2", amount=100),  # its jti under another key
        keyed("b3", "kb3", subject="bob", kind="retry_chance", unit="days"),
        keyed("b4", "kb4", subject="bob", kind="retry_chance", unit="days"),  # capped
        keyed("b5", "kb5", subject="carol", amount=200),  # exhausted (140 left)
        keyed("b6", "kb6", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"),
        keyed("b7", "kb7", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"),
        keyed("b8", "kb8", subject="x" * 300),  # too long: refused alone, others go on
        keyed("a0", "ka0", subject="zed", amount=10),  # an earlier batch's replay
        keyed("b9", "kb9", amount=140),  # takes the rest of the budget
    ]
    return [*map(response_of, first), *map(response_of, store.redeem_idempotent_batch(batch))]


def unkeyed_one_by_one(store: Store, clock: FakeClock) -> list[Any]:
    """Without keys, through redeem (one call of the batch function on PostgreSQL)."""
    setup(store)
    out = [
        response_of(store.redeem(item))
        for item in (
            request("u1", amount=100),  # new
            request("u1", amount=100),  # jti reused
            request("u2", subject="bob", kind="retry_chance", unit="days"),  # within cap
            request("u3", subject="bob", kind="retry_chance", unit="days"),  # user cap
            request("u4", subject="carol", amount=200),  # budget exhausted (150 left)
            request("u5", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"),
            request("u6", kind="coupon", unit="USD_cent", amount=500, campaign="x"),  # empty
        )
    ]
    first = store.redemption_by_jti("u1")
    assert first is not None
    clock.advance(timedelta(seconds=3))
    out.append(type(store.reverse(first.id, "refund", actor="ops")).__name__)
    out.append(response_of(store.redeem(request("u7", subject="dave", amount=150))))  # refunded
    out.append(response_of(store.redeem(request("u1", amount=100))))  # still redeemed
    return out


def unkeyed_batched(store: Store, clock: FakeClock) -> list[Any]:
    """Unkeyed items in one batch, among keyed ones: in order, each as it would run alone."""
    setup(store)
    batch: list[KeyedRedemption | RedemptionRequest] = [
        request("v1", amount=100),  # new
        request("v1", amount=100),  # its jti again, unkeyed
        keyed("v1", "kv1", amount=100),  # and keyed
        keyed("v2", "kv2", amount=10),  # a keyed neighbour
        request("v2", amount=10),  # reuses the keyed neighbour's jti
        request("v3", subject="bob", kind="retry_chance", unit="days"),
        request("v4", subject="bob", kind="retry_chance", unit="days"),  # capped
        request("v5", subject="carol", amount=200),  # exhausted (140 left)
        request("v6", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"),
        request("v7", kind="coupon", unit="USD_cent", amount=500, campaign="coupon"),  # empty
        request("v8", subject="x" * 300),  # too long: refused alone, others go on
        request("v9", amount=140),  # takes the rest of the budget
        request("v10", amount=1),  # nothing left
    ]
    return [response_of(result) for result in store.redeem_idempotent_batch(batch)]


@pytest.mark.parametrize(
    "scenario",
    [one_by_one, batched, unkeyed_one_by_one, unkeyed_batched],
    ids=["one_by_one", "batched", "unkeyed_one_by_one", "unkeyed_batched"],
)
def test_both_stores_answer_and_write_the_same(
    stores: tuple[Store, Store, FakeClock, FakeClock], scenario: Scenario
) -> None:
    lite, pg, lite_clock, pg_clock = stores
    lite_out = scenario(lite, lite_clock)
    pg_out = scenario(pg, pg_clock)
    assert pg_out == lite_out
    lite_rows, pg_rows = rows_of(lite), rows_of(pg)
    for table in lite_rows:
        assert pg_rows[table] == lite_rows[table], table
    # The scenarios really reached every kind of outcome.
    kinds = {entry[0] if isinstance(entry, tuple) else entry for entry in lite_out}
    expected = {"Redeemed", "replay", "mismatch"}
    if scenario in (unkeyed_one_by_one, unkeyed_batched):
        expected = {"Redeemed", "AlreadyRedeemed", "UserCapReached", "BudgetExhausted"}
        expected |= {"InventoryExhausted"} | (
            {"Reversed"} if scenario is unkeyed_one_by_one else {"input"}
        )
    elif scenario is one_by_one:
        expected |= {"AlreadyRedeemed", "UserCapReached", "BudgetExhausted"}
        expected |= {"InventoryExhausted", "Reversed", "AlreadyReversed"}
    else:
        expected |= {"AlreadyRedeemed", "UserCapReached", "BudgetExhausted", "input"}
        expected |= {"InventoryExhausted"}
    assert expected <= kinds, expected - kinds


def test_postgresql_redeems_unkeyed_in_its_batch_function(
    stores: tuple[Store, Store, FakeClock, FakeClock],
) -> None:
    """Once migrated, an unkeyed redemption is one call of the function, not a dozen statements."""
    _, pg, _, _ = stores
    if installed_by(REDEEM_BATCH_FUNCTION) is None:
        pytest.skip("the no-key batch function awaits its migration (number from the lead)")
    dialect = pg._dialect
    pipelined: list[str] = []
    run_pipelined = dialect.run_pipelined  # type: ignore[attr-defined]

    def counted(sql: str, params: Any, follow: Any) -> Any:
        pipelined.append(sql)
        return run_pipelined(sql, params, follow)

    def no_python_transaction(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an unkeyed redemption ran the Python transaction")

    dialect.run_pipelined = counted  # type: ignore[attr-defined]
    dialect.run = no_python_transaction  # type: ignore[method-assign]
    try:
        outcomes = [
            pg.redeem(request("w1")),
            *pg.redeem_idempotent_batch([request("w2"), request("w1"), keyed("w3", "kw3")]),
        ]
    finally:
        del dialect.run, dialect.run_pipelined
    assert [type(o).__name__ for o in outcomes] == [
        "Redeemed", "Redeemed", "AlreadyRedeemed", "Redeemed",
    ]  # fmt: skip
    assert len(pipelined) == 2
    assert all("errdiscount_redeem_batch" in sql for sql in pipelined)
