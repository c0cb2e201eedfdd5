"""GET /v1/reports/compensation and /v1/reports/outcomes on a scripted ledger + events.

Everything goes through the real API of a real server (uvicorn on port 0), on both
stores: vouchers issued with the admin key, alerts fetched, redemptions and a reversal,
call and outcome events posted; every count, cost, rate and interval is then known.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_stub.analytics import wilson_interval
from tests.support.server_support import APP_KEY, admin, running

APP = {"Authorization": f"Bearer {APP_KEY}"}
USD = {"kind": "coupon", "amount": 2, "unit": "USD"}
POINTS = {"kind": "points", "amount": 100, "unit": "points"}
DAYS = {"kind": "service_credit", "amount": 3, "unit": "days"}

# (subject, error code, grade, segment, compensation, how far the voucher gets)
VOUCHERS: tuple[tuple[str, str, str, str | None, dict[str, Any], str], ...] = (
    ("alice", "PAY_001", "minor", "new", USD, "redeemed"),
    ("bob", "PAY_001", "minor", None, USD, "reversed"),
    ("carol", "PAY_001", "severe", None, POINTS, "redeemed"),
    ("dave", "NET_503", "severe", "new", POINTS, "shown_page"),
    ("erin", "NET_503", "moderate", None, DAYS, "issued"),
)


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    with running(tmp_path, database=store_url) as url, httpx.Client(base_url=url) as http:
        yield http


def _call(user: str, ts: datetime, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": ts.isoformat(),
        "kind": "call",
        "outcome": "error",
        "user_id": user,
        "endpoint": "POST /api/pay",
        "method": "POST",
        "status": 503,
        "error_code": "PAY_DOWN",
        "category": "protocol",
        "source": "client",
    }
    event.update(overrides)
    return event


def _outcome(user: str, ts: datetime, name: str = "purchase") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "ts": ts.isoformat(),
        "kind": "outcome",
        "name": name,
        "user_id": user,
        "value": 19.9,
    }


def _script_ledger(http: httpx.Client) -> tuple[datetime, datetime]:
    """The vouchers of `VOUCHERS`, taken as far as each says; (before, after) the script."""
    before = datetime.now(UTC)
    http.put("/v1/budgets/coupon/*", json={"total": 1000, "unit": "USD_cent"}, headers=admin())
    http.put("/v1/budgets/points/*", json={"total": 1000, "unit": "points"}, headers=admin())
    for subject, code, grade, segment, compensation, stage in VOUCHERS:
        body = {"subject": subject, "error_code": code, "category": "protocol",
                "severity": grade, "compensation": compensation}  # fmt: skip
        if segment is not None:
            body["segment"] = segment
        issued = http.post("/v1/tokens", json=body, headers=admin())
        assert issued.status_code == 201, issued.text
        voucher = issued.json()
        alert = f"/v1/alerts/{voucher['alert_id']}"
        if stage == "shown_page":
            page = http.get(alert, headers={"Accept": "text/html"})
            assert page.status_code == 200
        elif stage != "issued":
            for _ in range(2):  # a second view is not a second "shown"
                assert http.get(alert, headers={"Accept": "application/json"}).status_code == 200
            redeemed = http.post("/v1/redemptions", json={"token": voucher["token"]})
            assert redeemed.status_code == 201, redeemed.text
            if stage == "reversed":
                reversal = http.post(
                    f"/v1/redemptions/{redeemed.json()['id']}/reversal",
                    json={"reason": "support ticket 7"},
                    headers=admin(),
                )
                assert reversal.status_code == 200
    return before, datetime.now(UTC)


def _report(http: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = http.get(f"/v1/reports/{path}", params=params, headers=admin())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def _counts(group: dict[str, Any]) -> tuple[int, int, int, int]:
    return group["issued"], group["shown"], group["redeemed"], group["reversed"]


COST_ALL = [
    {"unit": "USD", "issued": 4, "redeemed": 2},  # bob's reversed coupon is given back
    {"unit": "days", "issued": 3, "redeemed": 0},
    {"unit": "points", "issued": 200, "redeemed": 100},
]


def test_the_funnel_counts_costs_and_budgets_of_a_scripted_ledger(server: httpx.Client) -> None:
    before, after = _script_ledger(server)
    report = _report(server, "compensation", since="1d")
    assert set(report) == {"since", "until", "group_by", "totals", "groups", "budgets"}
    assert report["group_by"] == "period"
    assert report["since"].endswith("Z") and report["until"].endswith("Z")
    assert _counts(report["totals"]) == (5, 4, 3, 1)
    assert report["totals"]["cost"] == COST_ALL
    # Every day of the window is a group (zeros included); today's holds everything.
    days = report["groups"]
    assert [g["key"] for g in days] == sorted(g["key"] for g in days) and len(days) == 2
    (busy,) = [g for g in days if g["issued"]]
    assert busy["key"] in {before.strftime("%Y-%m-%d"), after.strftime("%Y-%m-%d")}
    assert (_counts(busy), busy["cost"]) == ((5, 4, 3, 1), COST_ALL)
    assert report["budgets"] == [
        {"kind": "coupon", "campaign": None, "unit": "USD", "limit": 10, "spent": 2,
         "remaining": 8},
        {"kind": "points", "campaign": None, "unit": "points", "limit": 1000, "spent": 100,
         "remaining": 900},
    ]  # fmt: skip

    by_code = _report(server, "compensation", since="1d", group_by="error_code")["groups"]
    assert [(g["key"], _counts(g), g["cost"]) for g in by_code] == [
        ("PAY_001", (3, 3, 3, 1), [{"unit": "USD", "issued": 4, "redeemed": 2},
                                   {"unit": "points", "issued": 100, "redeemed": 100}]),
        ("NET_503", (2, 1, 0, 0), [{"unit": "days", "issued": 3, "redeemed": 0},
                                   {"unit": "points", "issued": 100, "redeemed": 0}]),
    ]  # fmt: skip
    by_grade = _report(server, "compensation", since="1d", group_by="grade")["groups"]
    assert [(g["key"], _counts(g)) for g in by_grade] == [
        ("minor", (2, 2, 2, 1)),
        ("severe", (2, 2, 1, 0)),
        ("moderate", (1, 0, 0, 0)),
    ]
    by_segment = _report(server, "compensation", since="1d", group_by="segment")["groups"]
    assert [(g["key"], _counts(g)) for g in by_segment] == [
        (None, (3, 2, 2, 1)),
        ("new", (2, 2, 1, 0)),
    ]
    months = _report(server, "compensation", since="1d", period="month")["groups"]
    assert sum(g["issued"] for g in months) == 5
    assert all(len(g["key"]) == len("2026-12") for g in months)
    weeks = _report(server, "compensation", since="1d", period="week")["groups"]
    (week,) = [g for g in weeks if g["issued"]]
    monday = datetime.fromisoformat(week["key"] + "T00:00:00+00:00")
    assert monday.weekday() == 0 and monday <= after < monday + timedelta(days=7)
    # Vouchers issued before the window are not in it.
    empty = _report(server, "compensation", until=before.isoformat())
    assert _counts(empty["totals"]) == (0, 0, 0, 0) and empty["totals"]["cost"] == []


def test_the_outcome_comparison_of_scripted_failures_and_purchases(server: httpx.Client) -> None:
    now = datetime.now(UTC)
    failed_at = now - timedelta(hours=2)
    users = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank")
    calls = [_call(user, failed_at) for user in users]
    calls += [
        _call("alice", failed_at - timedelta(minutes=5), outcome="ok", status=200,
              error_code=None, category=None),  # a success is no failure
        # Not failures we owe for (the SDK's rule): a business refusal, a client status.
        _call("ivan", failed_at, status=402, category="business"),
        _call("judy", failed_at, status=429),
        _call("kim", now - timedelta(days=3)),  # before the window
    ]  # fmt: skip
    later = now + timedelta(hours=1)  # after every redemption of the script
    outcomes = [
        _outcome("alice", later),  # redeemed, then bought
        _outcome("bob", later),  # redeemed, reversed: offered, not redeemed; bought
        _outcome("dave", failed_at - timedelta(hours=1)),  # bought before the failure only
        _outcome("erin", later, name="renewal"),  # another outcome
        _outcome("frank", now - timedelta(hours=1)),  # never offered; bought
        _outcome("gina", now - timedelta(hours=1)),
        _outcome("ivan", later),  # no compensable failure: not counted at all
        _outcome("judy", later),
    ]
    posted = server.post("/v1/events", json={"events": calls + outcomes}, headers=APP)
    assert posted.json() == {"accepted": len(calls) + len(outcomes), "duplicates": 0,
                             "rejected": []}  # fmt: skip
    again = server.post("/v1/events", json={"events": outcomes[:2]}, headers=APP)
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    _script_ledger(server)

    report = _report(server, "outcomes", since="1d")
    assert report["name"] == "purchase" and report["within_days"] == 30
    assert (report["confidence"], report["method"]) == (0.95, "wilson")
    assert report["note"].startswith("Observational, not causal")
    groups = {g["group"]: g for g in report["groups"]}
    assert [g["group"] for g in report["groups"]] == [
        "redeemed", "offered_not_redeemed", "not_offered"
    ]  # fmt: skip
    expected = {
        "redeemed": (2, 1, 0.5, 0.094531, 0.905469),  # alice bought, carol did not
        "offered_not_redeemed": (3, 1, 0.333333, 0.061492, 0.79234),  # bob; dave, erin not
        "not_offered": (3, 2, 0.666667, 0.20766, 0.938508),  # frank, gina; hank not
    }
    for name, (users_n, converted, rate, low, high) in expected.items():
        group = groups[name]
        assert (group["users"], group["converted"]) == (users_n, converted), name
        assert (group["rate"], group["ci_low"], group["ci_high"]) == (rate, low, high), name
        assert (low, high) == tuple(round(v, 6) for v in wilson_interval(converted, users_n))

    renewals = {g["group"]: g for g in _report(server, "outcomes", since="1d",
                                                name="renewal", within_days=1)["groups"]}  # fmt: skip
    assert (renewals["offered_not_redeemed"]["users"],
            renewals["offered_not_redeemed"]["converted"]) == (3, 1)  # fmt: skip
    assert renewals["redeemed"]["converted"] == 0
    nobody = _report(server, "outcomes", until=(now - timedelta(days=5)).isoformat())
    assert all(g["users"] == 0 and g["rate"] is None and g["ci_low"] is None
               for g in nobody["groups"])  # fmt: skip


@pytest.mark.parametrize("path", ["compensation", "outcomes"])
@pytest.mark.parametrize(
    "params",
    [
        {"nope": "1"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no zone
        {"since": "2d", "until": "3d"},  # since after until
        {"since": "500d"},  # longer than 400 days
        {"since": "1d", "until": "1d"},
        {"since": "2999-12-30T00:00:00Z", "until": "3000-01-01T00:00:00Z"},  # the era
        {"since": "1969-12-31T00:00:00Z", "until": "1970-01-02T00:00:00Z"},
    ],
)
def test_bad_queries_are_400_invalid_query(
    server: httpx.Client, path: str, params: dict[str, str]
) -> None:
    response = server.get(f"/v1/reports/{path}", params=params, headers=admin())
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"  # the server's problems
    assert response.json()["error_code"] == "INVALID_QUERY"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("compensation", {"group_by": "country"}),
        ("compensation", {"period": "year"}),
        ("compensation", {"group_by": "grade", "period": "week"}),
        ("outcomes", {"within_days": "0"}),
        ("outcomes", {"within_days": "366"}),
        ("outcomes", {"within_days": "x"}),
        ("outcomes", {"name": "n" * 129}),
    ],
)
def test_bad_report_parameters_are_400(
    server: httpx.Client, path: str, params: dict[str, str]
) -> None:
    response = server.get(f"/v1/reports/{path}", params=params, headers=admin())
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_QUERY")


def test_a_repeated_parameter_is_400(server: httpx.Client) -> None:
    response = server.get("/v1/reports/outcomes?within_days=3&within_days=4", headers=admin())
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_QUERY")


@pytest.mark.parametrize("path", ["compensation", "outcomes"])
@pytest.mark.parametrize("headers", [{}, APP, {"Authorization": "Bearer wrong-0123456789abc"}])
def test_reports_need_the_admin_key(
    server: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    response = server.get(f"/v1/reports/{path}", params={"nope": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"
