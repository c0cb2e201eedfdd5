"""The detector worker against a real server: scripted timelines posted through
POST /v1/events, one `run_once(now=...)` per step, exact episodes, incidents and
compensations; dry-run, budgets, restarts, manual incidents, the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from errdiscount_sdk.detection import episode_id
from server_stub import create_app
from server_stub.workers._detector import DetectorWorker, RunReport
from tests.support.server import serve
from tests.support.server_support import APP_KEY, admin, settings, shared_key
from tests.support.webhook_receiver import receiving

APP = {"Authorization": f"Bearer {APP_KEY}"}
PAY = "POST /api/pay"
FEED = "GET /api/feed"
# A fixed minute two hours ago: every timeline is history, replayed exactly.
T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(
    user: str | None,
    minutes: float,
    *,
    endpoint: str = PAY,
    outcome: str = "error",
    category: str | None = "network",
    status: int | None = None,
    count: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": at(minutes).isoformat(),
        "kind": "call",
        "method": endpoint.split(" ", 1)[0],
        "outcome": outcome,
        "user_id": user,
        "endpoint": endpoint,
        "status": status,
        "category": category if outcome == "error" else None,
        "error_code": "E" if outcome == "error" else None,
        "attempts": 1,
        "count": count,
        "source": "client",
    }
    return body


def ok(user: str | None, minutes: float, **kw: Any) -> dict[str, Any]:
    return event(user, minutes, outcome="ok", category=None, status=200, **kw)


@dataclass
class Server:
    url: str
    worker: DetectorWorker

    def post(self, events: list[dict[str, Any]]) -> None:
        for chunk in range(0, len(events), 500):
            answer = httpx.post(
                f"{self.url}/v1/events", json={"events": events[chunk : chunk + 500]}, headers=APP
            )
            assert answer.status_code == 202, answer.text
            assert answer.json()["rejected"] == []

    def run(self, minutes: float) -> RunReport:
        return asyncio.run(self.worker.run_once(now=at(minutes)))

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, headers=admin())
        assert answer.status_code == 200, answer.text
        return answer.json()


@contextlib.contextmanager
def server(tmp_path: Path, mode: str = "on", **overrides: Any) -> Iterator[Server]:
    app = create_app(
        settings(tmp_path, detector_interval=0, auto_compensate=mode, **overrides),
        signing_key=shared_key(),
    )
    with serve(app) as url:
        yield Server(url, app.state.detector)


def compensations(s: Server, status: str | None = None) -> list[tuple[str, str, str]]:
    params = {"limit": 1000} | ({"status": status} if status else {})
    rows = s.get("/v1/auto-compensations", **params)["auto_compensations"]
    return sorted((r["user_id"], r["reason"], r["status"]) for r in rows)


def spread(user: str, minutes: list[float], **kw: Any) -> list[dict[str, Any]]:
    return [event(user, m, **kw) for m in minutes]


def outage(start: int, minutes: int, users: int, *, endpoint: str = FEED) -> list[dict[str, Any]]:
    """``users`` users each failing once a minute for ``minutes`` minutes (then fine)."""
    events = []
    for m in range(start, start + minutes):
        for u in range(users):
            events.append(event(f"crowd{u}", m + 0.5, endpoint=endpoint, category="protocol",
                                status=503))  # fmt: skip
    return events


# (name, events, run at (minutes), expected episodes (user, start minute),
#  expected compensations (user, reason, status))
TIMELINES: list[tuple[str, list[dict[str, Any]], float, list[tuple[str, float]], list[Any]]] = [
    ("three failures over 5 min: an episode", spread("u1", [0, 2.5, 5]), 10,
     [("u1", 0)], [("u1", "episode", "issued")]),
    ("three failures over 4 min 59 s: a blip", spread("u1", [0, 2.5, 4 + 59 / 60]), 60,
     [], []),
    ("two failures: a blip", spread("u1", [0, 20]), 60, [], []),
    ("business refusals never count", spread("u1", [0, 3, 6, 9], category="business"), 30,
     [], []),
    ("client 4xx never count",
     spread("u1", [0, 3, 6, 9], category="protocol", status=404), 30, [], []),
    ("server 5xx count", spread("u1", [0, 3, 6], category="protocol", status=502), 30,
     [("u1", 0)], [("u1", "episode", "issued")]),
    ("two users, two episodes",
     spread("a", [0, 3, 6]) + spread("b", [1, 4, 7], endpoint=FEED), 30,
     [("a", 0), ("b", 1)], [("a", "episode", "issued"), ("b", "episode", "issued")]),
    ("one user, two endpoints: one compensation (24 h cooldown)",
     spread("u1", [0, 3, 6]) + spread("u1", [10, 13, 16], endpoint=FEED), 30,
     [("u1", 0), ("u1", 10)], [("u1", "episode", "issued"), ("u1", "episode", "withheld")]),
    ("failures spread over more than 60 min: a blip", spread("u1", [0, 40, 80]), 120, [], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "run_at", "episodes", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in TIMELINES],
)
def test_scripted_timelines(
    tmp_path: Path,
    events: list[dict[str, Any]],
    run_at: float,
    episodes: list[tuple[str, float]],
    expected: list[Any],
) -> None:
    with server(tmp_path) as s:
        s.post(events)
        report = s.run(run_at)
        assert report.ran
        found = s.get("/v1/episodes")["episodes"]
        assert sorted((e["user_id"], e["start"]) for e in found) == sorted(
            (user, at(m).isoformat().replace("+00:00", "Z")) for user, m in episodes
        )
        for e in found:
            assert e["id"] == episode_id(
                e["user_id"], e["endpoint"], datetime.fromisoformat(e["start"])
            )
        assert compensations(s) == sorted(expected)
        issued = [c for c in expected if c[2] == "issued"]
        assert report.issued == len(issued)
        # The ledger names each automatic compensation's reason and ref.
        ledger = httpx.get(f"{s.url}/v1/ledger", headers=admin()).json()["entries"]
        auto = [r for r in ledger if r["event"] == "issued"]
        assert sorted(r["subject"] for r in auto) == sorted(c[0] for c in issued)
        assert all(r["detail"]["reason"] == "episode" and r["detail"]["ref"] for r in auto)
        # Running again changes nothing: exactly once.
        again = s.run(run_at + 1)
        assert again.issued == 0
        assert compensations(s) == sorted(expected)


def test_a_compensation_follows_detection_not_the_end_and_the_episode_closes(
    tmp_path: Path,
) -> None:
    with server(tmp_path) as s:
        s.post(spread("u1", [0, 2, 5]))
        assert s.run(5.5).issued == 1
        (open_episode,) = s.get("/v1/episodes")["episodes"]
        assert open_episode["state"] == "open" and open_episode["end"] is None
        s.post(spread("u1", [8]))
        assert s.run(9).issued == 0
        (still,) = s.get("/v1/episodes")["episodes"]
        assert still["failures"] == 4 and still["id"] == open_episode["id"]
        s.run(8 + 31)
        (closed,) = s.get("/v1/episodes")["episodes"]
        assert closed["state"] == "closed"
        assert closed["end"] == at(8).isoformat().replace("+00:00", "Z")
        assert compensations(s) == [("u1", "episode", "issued")]
        mine = s.get("/v1/users/u1/compensations")
        (token,) = mine["issued"]
        assert [p["jti"] for p in mine["pending"]] == [token["jti"]]
        assert [(a["reason"], a["ref"]) for a in mine["automatic"]] == [("episode", closed["id"])]
        assert token["reason"] == "episode" and token["ref"] == closed["id"]
        assert token["compensation"] == {"kind": "membership_extension", "amount": 30,
                                         "unit": "days"}  # fmt: skip
        assert token["redeemed"] is False


def test_dry_run_records_the_decisions_and_issues_nothing(tmp_path: Path) -> None:
    with server(tmp_path, mode="dry-run") as s:
        s.post(spread("u1", [0, 3, 6]) + spread("u2", [0, 3, 6]))
        report = s.run(10)
        assert (report.dry_run, report.issued) == (2, 0)
        assert compensations(s, "dry_run") == [("u1", "episode", "dry_run"),
                                               ("u2", "episode", "dry_run")]  # fmt: skip
        assert s.get("/v1/users/u1/compensations")["issued"] == []
        ledger = httpx.get(f"{s.url}/v1/ledger", headers=admin()).json()["entries"]
        assert [r for r in ledger if r["event"] == "issued"] == []


def test_off_detects_but_records_no_decision(tmp_path: Path) -> None:
    with server(tmp_path, mode="off") as s:
        s.post(spread("u1", [0, 3, 6]))
        s.run(10)
        assert len(s.get("/v1/episodes")["episodes"]) == 1
        assert compensations(s) == []


def test_a_budget_exhausted_mid_run_issues_up_to_it_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    with server(tmp_path) as s:
        budget = httpx.put(
            f"{s.url}/v1/budgets/membership_extension/*",
            json={"total": 60, "unit": "days"},
            headers=admin(),
        )
        assert budget.status_code == 200, budget.text
        # u0 is high value: priority, served first when the budget runs out.
        httpx.put(f"{s.url}/v1/users/u0", json={"segment": "high_value"}, headers=admin())
        events = [e for u in ("u0", "u1", "u2", "u3") for e in spread(u, [0, 3, 6])]
        s.post(events)
        report = s.run(10)
        statuses = dict((u, st) for u, _, st in compensations(s))
        assert sorted(statuses.values()).count("refused") == report.refused
        # high value: 60 days (doubled) takes the whole budget; the rest is refused.
        assert statuses["u0"] == "issued"
        assert (report.issued, report.refused) == (1, 3)
        refused = s.get("/v1/auto-compensations", status="refused")["auto_compensations"]
        assert {r["why"] for r in refused} == {"budget membership_extension/*"}


def test_a_restart_does_not_issue_again(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.post(spread("u1", [0, 3, 6]))
        assert s.run(10).issued == 1
    with server(tmp_path) as s:
        report = s.run(11)
        assert report.issued == 0 and report.already_recorded >= 1
        # The cooldown survives the restart: another episode within 24 h is withheld.
        s.post(spread("u1", [20, 23, 26], endpoint=FEED))
        later = s.run(30)
        assert later.issued == 0
        assert compensations(s) == [("u1", "episode", "issued"), ("u1", "episode", "withheld")]


def test_an_outage_opens_an_incident_that_compensates_each_affected_user_once(
    tmp_path: Path,
) -> None:
    with server(tmp_path) as s:
        s.post(outage(0, 8, 20) + [ok(f"crowd{u}", m + 0.5, endpoint=FEED)
                                   for m in range(8, 20) for u in range(20)])  # fmt: skip
        s.run(6)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert incident["state"] == "open" and incident["manual"] is False
        assert incident["start"] == at(0.5).isoformat().replace("+00:00", "Z")
        s.run(25)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert incident["state"] == "closed"
        assert incident["severity"] == "minor"
        assert incident["affected_users"] == 20
        found = compensations(s)
        # Each user's own episode is covered by the incident, which compensates once.
        assert found == sorted(
            [(f"crowd{u}", "incident", "issued") for u in range(20)]
            + [(f"crowd{u}", "episode", "withheld") for u in range(20)]
        )
        withheld = s.get("/v1/auto-compensations", status="withheld")["auto_compensations"]
        assert {(w["why"], w["detail"]["covered_by"]) for w in withheld} == {
            ("incident", incident["id"])
        }
        ledger = httpx.get(f"{s.url}/v1/ledger", headers=admin(),
                           params={"limit": 1000}).json()["entries"]  # fmt: skip
        kinds = [r["event"] for r in ledger]
        assert kinds.count("incident_opened") == 1 and kinds.count("incident_closed") == 1
        mine = s.get("/v1/users/crowd3/compensations")["issued"]
        assert [(c["reason"], c["ref"]) for c in mine] == [("incident", incident["id"])]
        assert s.run(26).issued == 0


@pytest.mark.parametrize(
    ("aggregated", "opened_by", "start"),
    [
        # Events one per call: the outage began at 10:50 inside minute 10, whose
        # failures all came after its last success; the run counts from minute 10.
        (False, 15, 10 + 50.5 / 60),
        # Successes as a reporter sends them (one count a minute, stamped at :00): when
        # they happened is unknown, so the run counts from minute 11.
        (True, 16, 11 + 0.5 / 60),
    ],
)
def test_the_server_detector_sees_an_outage_begin_inside_a_minute(
    tmp_path: Path, aggregated: bool, opened_by: int, start: float
) -> None:
    events = []
    for k in range(40 * 30):  # a call every 2 s, users crowd0-24 in turn
        minutes = (0.5 + 2 * k) / 60
        failing = minutes >= 10 + 50 / 60
        if failing:
            events.append(event(f"crowd{k % 25}", minutes, endpoint=FEED, category="protocol",
                                status=503))  # fmt: skip
        elif not aggregated:
            events.append(ok(f"crowd{k % 25}", minutes, endpoint=FEED))
        elif k % 30 == 0:
            events.append(ok("counted", int(minutes), endpoint=FEED, count=30))
    with server(tmp_path, mode="off") as s:
        s.post(events)
        s.run(opened_by - 0.01)
        assert s.get("/v1/incidents")["incidents"] == []
        s.run(opened_by)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert incident["start"] == at(start).isoformat().replace("+00:00", "Z")


def test_a_crm_receives_incident_opened_then_closed(tmp_path: Path) -> None:
    with receiving() as crm, server(
        tmp_path, mode="off", webhook_urls=(crm.url,), webhook_secrets=(crm.secret,),
        allow_private_webhooks=True, webhook_retry_schedule=(0.05,),
    ) as s:  # fmt: skip
        s.post(outage(0, 8, 20) + [ok(f"crowd{u}", m + 0.5, endpoint=FEED)
                                   for m in range(8, 20) for u in range(20)])  # fmt: skip
        s.run(6)
        assert crm.wait_for(1)
        s.run(25)
        s.run(26)  # a later run writes nothing again
        assert crm.wait_for(2)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert crm.types() == ["incident.opened", "incident.closed"]
        assert crm.refused == 0
        opened, closed = (payload["data"] for payload in crm.verified)
        assert opened["incident"] == closed["incident"] == incident["id"]
        assert opened["scope"] == closed["scope"] == [FEED]
        assert opened["start"] == closed["start"] == incident["start"]
        assert (opened["end"], opened["severity"], opened["affected_users"]) == (None, None, None)
        assert (closed["end"], closed["severity"], closed["affected_users"]) == (
            incident["end"], "minor", 20
        )  # fmt: skip
        # An operator's declaration writes its event at once; the next run closes it.
        declared = httpx.post(f"{s.url}/v1/incidents", headers=admin(), json={
            "scope": "all", "start": at(30).isoformat(), "end": at(40).isoformat(),
        })  # fmt: skip
        assert declared.status_code == 201
        assert crm.wait_for(3)
        s.run(45)
        assert crm.wait_for(4)
        manual = [p["data"] for p in crm.verified[2:]]
        assert [p["type"] for p in crm.verified[2:]] == ["incident.opened", "incident.closed"]
        assert {m["incident"] for m in manual} == {declared.json()["id"]}
        assert [(m["manual"], m["scope"]) for m in manual] == [(True, ["*"])] * 2


def test_a_declared_incident_compensates_the_users_in_scope(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.post([ok("a", 1), ok("b", 2, endpoint=FEED), ok("c", 50)])
        declared = httpx.post(
            f"{s.url}/v1/incidents",
            json={"scope": [PAY], "start": at(0).isoformat(), "end": at(10).isoformat()},
            headers=admin(),
        )
        assert declared.status_code == 201, declared.text
        again = httpx.post(
            f"{s.url}/v1/incidents",
            json={"scope": [PAY], "start": at(0).isoformat(), "end": at(10).isoformat()},
            headers=admin(),
        )
        assert again.status_code == 200 and again.json()["id"] == declared.json()["id"]
        s.run(60)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert incident["manual"] and incident["state"] == "closed"
        assert compensations(s) == [("a", "incident", "issued")]


def test_closing_an_open_declared_incident(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.post([ok("a", 1), ok("b", 3)])
        declared = httpx.post(
            f"{s.url}/v1/incidents",
            json={"scope": "all", "start": at(0).isoformat()},
            headers=admin(),
        ).json()
        assert declared["scope"] == "all"
        closing = httpx.post(f"{s.url}/v1/incidents/{declared['id']}/close", headers=admin())
        assert closing.status_code == 202
        # The close request is stamped with the wall clock (T0 + 2 h): run after it.
        s.run(180)
        (incident,) = s.get("/v1/incidents")["incidents"]
        assert incident["state"] == "closed"
        assert compensations(s) == [("a", "incident", "issued"), ("b", "incident", "issued")]
        missing = httpx.post(f"{s.url}/v1/incidents/inc_nope/close", headers=admin())
        assert missing.status_code == 404


def test_the_admin_api_needs_the_admin_key_and_checks_input(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        for path in ("/v1/episodes", "/v1/incidents", "/v1/auto-compensations",
                     "/v1/endpoints/degraded"):  # fmt: skip
            assert httpx.get(f"{s.url}{path}", headers=APP).status_code in (401, 403)
        bad = httpx.get(f"{s.url}/v1/auto-compensations", params={"status": "x"}, headers=admin())
        assert bad.status_code == 400
        wrong = httpx.put(f"{s.url}/v1/users/u1", json={"segment": "vip"}, headers=admin())
        assert wrong.status_code == 422
        scope = httpx.post(f"{s.url}/v1/incidents", json={"scope": [], "start": at(0).isoformat()},
                           headers=admin())  # fmt: skip
        assert scope.status_code == 422
        run = httpx.post(f"{s.url}/v1/detector/run", headers=admin())
        assert run.status_code == 200 and run.json()["ran"] is True
        assert run.json()["mode"] == "on"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        # A limit above 1000 is capped (as GET /v1/events), not refused.
        ("GET", "/v1/episodes", {"params": {"limit": "999999999"}}, 200),
        ("GET", "/v1/incidents", {"params": {"limit": "5000"}}, 200),
        ("GET", "/v1/auto-compensations", {"params": {"limit": "1001"}}, 200),
        ("GET", "/v1/episodes", {"params": {"limit": "1000000000"}}, 400),
        # Names are the events' names: any text without control characters.
        ("GET", "/v1/episodes", {"params": {"user_id": "张三", "endpoint": "GET /é"}}, 200),
        ("GET", "/v1/episodes", {"params": {"user_id": "u\x1b1"}}, 400),
        ("GET", "/v1/auto-compensations", {"params": {"user_id": "u\x7f"}}, 400),
        ("PUT", "/v1/users/%E5%BC%A0%E4%B8%89", {"json": {"value_tier": "gold"}}, 200),
        ("PUT", "/v1/users/u1", {"json": {"value_tier": "g\x17"}}, 422),
        ("PUT", "/v1/users/u1", {"content": b'{"value_tier": "\\ud800"}'}, 400),
        ("POST", "/v1/incidents", {"json": {"scope": ["GET /a\x1a"], "start": "2026-03-01T00:00:00Z"}}, 422),
        ("POST", "/v1/incidents", {"json": {"scope": ["GET /é"], "start": "2026-03-01t00:00:00z"}}, 201),
        ("POST", "/v1/incidents", {"json": {"scope": "GET /a", "start": "2026-03-01T00:00:00Z"}}, 422),
        # RFC 3339's leap second is read as the last microsecond of its minute.
        ("POST", "/v1/incidents", {"json": {"scope": "all", "start": "2016-12-31T23:59:60Z"}}, 201),
        ("POST", "/v1/incidents", {"json": {"scope": "all", "start": "2026-03-01T00:00:00Z",
                                            "end": "2026-02-28T00:00:00Z"}}, 422),
    ],
)  # fmt: skip
def test_the_admin_api_accepts_what_its_schema_states(
    tmp_path: Path, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    with server(tmp_path, mode="off") as s:
        headers = admin() | ({"Content-Type": "application/json"} if "content" in kwargs else {})
        answer = httpx.request(method, f"{s.url}{path}", headers=headers, **kwargs)
        assert answer.status_code == status, answer.text
        if status >= 400:
            assert answer.json()["error_code"] in ("INVALID_QUERY", "INVALID_BODY", "INVALID_JSON")
        if path == "/v1/incidents" and status == 201 and "2016" in str(kwargs):
            assert answer.json()["start"] == "2016-12-31T23:59:59.999999Z"


def test_dry_run_is_announced_in_the_log_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="server_stub"), server(tmp_path, mode="dry-run"):
        pass
    (line,) = [r.getMessage() for r in caplog.records if "DRY-RUN" in r.getMessage()]
    assert "nothing is issued" in line
