"""GET /v1/reports/breakdown and /timeseries against a real server, on both stores.

The seed's case, generated: one iOS version carries ~10 % of the calls and ~80 % of
the "message failed" errors; the breakdown must flag it, with its lift, and nothing
else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.support.server_support import APP_KEY, ROOT, admin, running

APP = {"Authorization": f"Bearer {APP_KEY}"}
START = datetime(2026, 3, 1, 10, 17, tzinfo=UTC)
END = datetime(2026, 3, 4, 5, 43, tzinfo=UTC)
# A window with ragged edges: minutes of Mar 1 and Mar 4, whole days Mar 2 and 3.
WINDOW = {"since": "2026-03-01T10:00:00Z", "until": "2026-03-04T06:00:00Z"}
# os_version → (calls, failures): 17.2 has 200 / 2000 calls and 160 / 200 failures.
VERSIONS = {
    "16.7": (450, 10),
    "17.1": (450, 10),
    "17.2": (200, 160),
    "17.3": (450, 10),
    "17.4": (450, 10),
}
SUCCESS_BATCH = 5  # successes are sent aggregated, count=5 (as reporters do)
CODE = "MSG_SEND_FAILED"


def seed_events() -> list[dict[str, Any]]:
    """The seed's case: every other dimension spread evenly over calls and failures."""
    shapes: list[tuple[str, str, int]] = []
    for version, (calls, failures) in VERSIONS.items():
        shapes += [(version, "error", 1)] * failures
        shapes += [(version, "ok", SUCCESS_BATCH)] * ((calls - failures) // SUCCESS_BATCH)
    step = (END - START) / (len(shapes) - 1)
    events = []
    for index, (version, outcome, count) in enumerate(shapes):
        failed = outcome == "error"
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=index + 1)),
            # interleaved in time: every version everywhere in the window
            "ts": (START + step * ((index * 7919) % len(shapes))).isoformat(),
            "kind": "call",
            "outcome": outcome,
            "user_id": f"u{index % 50}",
            "endpoint": ("POST /v1/messages", "GET /v1/inbox")[index % 2],
            "method": ("POST", "GET")[index % 2],
            "status": 503 if failed else 200,
            "platform": "ios",
            "os_version": version,
            "sdk_version": "0.4.0",
            "source": "client",
            "count": count,
        }
        if index % 4:  # a quarter of the events do not say their app version
            event["app_version"] = ("5.0.0", "5.1.0", "5.2.0")[index % 3]
        if failed:
            event.update(error_code=CODE, category="protocol", severity="moderate")
        events.append(event)
    return events


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[str]:
    """A server on the store under test, loaded with the seed's case over HTTP."""
    with running(tmp_path, database=store_url, detector_interval=0.0, dispatch=False) as url:
        events = seed_events()
        for start in range(0, len(events), 500):
            answer = httpx.post(
                f"{url}/v1/events", json={"events": events[start : start + 500]}, headers=APP
            )
            assert answer.status_code == 202, answer.text
            assert answer.json()["rejected"] == [], answer.text
        yield url


def get(url: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}{path}", params={**WINDOW, **params}, headers=admin())


def test_the_seeds_case_flags_that_os_version_and_nothing_else(server: str) -> None:
    answer = get(server, "/v1/reports/breakdown")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    reports = answer.json()
    assert [r["dimension"] for r in reports] == [
        "platform", "os_version", "app_version", "sdk_version", "endpoint", "error_code",
        "category",
    ]  # fmt: skip
    for report in reports:
        assert (report["total_calls"], report["total_failures"]) == (2000, 200)
        assert (report["since"], report["until"]) == (
            "2026-03-01T10:00:00Z",
            "2026-03-04T06:00:00Z",
        )
    suspects = [
        (report["dimension"], value["value"])
        for report in reports
        for value in report["values"]
        if value["suspect"]
    ]
    assert suspects == [("os_version", "17.2")]
    (found,) = [v for v in reports[1]["values"] if v["value"] == "17.2"]
    assert (found["failures"], found["calls"]) == (160, 200)
    assert found["failure_share"] == pytest.approx(0.8)
    assert found["call_share"] == pytest.approx(0.1)
    assert found["lift"] == pytest.approx(8.0)
    # The error code holds every failure, yet is no suspect: failures alone have it.
    (code,) = [v for v in reports[5]["values"] if v["value"] == CODE]
    assert (code["failure_share"], code["lift"], code["suspect"]) == (1.0, None, False)


def test_one_dimension_sorted_with_top_and_other(server: str) -> None:
    report = get(server, "/v1/reports/breakdown", dimension="os_version", top="2").json()
    assert report["dimension"] == "os_version"
    assert [(v["value"], v["failures"], v["calls"]) for v in report["values"]] == [
        ("17.2", 160, 200),
        ("16.7", 10, 450),  # equal failures and calls: by value
    ]
    assert report["other"] == {"failures": 30, "calls": 1350, "values": 3}
    first = report["values"][0]
    assert first["first_seen"].endswith("Z") and first["last_seen"].endswith("Z")
    assert (
        START
        <= datetime.fromisoformat(first["first_seen"])
        < datetime.fromisoformat(first["last_seen"])
        <= END
    )
    # Stricter thresholds from the query: 160 failures are not enough for 200.
    strict = get(server, "/v1/reports/breakdown", dimension="os_version", min_failures="200")
    assert [v["suspect"] for v in strict.json()["values"]] == [False] * 5


def test_an_absent_dimension_is_null(server: str) -> None:
    report = get(server, "/v1/reports/breakdown", dimension="app_version").json()
    values = {v["value"]: v["calls"] for v in report["values"]}
    assert set(values) == {"5.0.0", "5.1.0", "5.2.0", None}
    assert sum(values.values()) == 2000
    assert values[None] > 0


def test_filters_narrow_the_rows_and_error_code_narrows_only_failures(server: str) -> None:
    whole = get(server, "/v1/reports/breakdown", dimension="endpoint").json()
    by_endpoint = {v["value"]: (v["failures"], v["calls"]) for v in whole["values"]}
    only = get(
        server, "/v1/reports/breakdown", dimension="os_version", endpoint="GET /v1/inbox"
    ).json()
    assert (only["total_failures"], only["total_calls"]) == by_endpoint["GET /v1/inbox"]
    coded = get(server, "/v1/reports/breakdown", dimension="os_version", error_code=CODE).json()
    assert (coded["total_failures"], coded["total_calls"]) == (200, 2000)
    other = get(server, "/v1/reports/breakdown", dimension="os_version", error_code="NOPE").json()
    assert (other["total_failures"], other["total_calls"]) == (0, 2000)
    assert all(v["lift"] == 0.0 and not v["suspect"] for v in other["values"])


def test_a_cross_tab_splits_each_row_over_the_top_columns(server: str) -> None:
    answer = get(server, "/v1/reports/breakdown", dimension="os_version", by="app_version")
    assert answer.status_code == 200, answer.text
    table = answer.json()
    assert (table["dimension"], table["by"], table["total_calls"]) == (
        "os_version",
        "app_version",
        2000,
    )
    assert [row["value"] for row in table["rows"]] == ["17.2", "16.7", "17.1", "17.3", "17.4"]
    for row in table["rows"]:
        assert [c["value"] for c in row["columns"]] == [
            c["value"] for c in table["rows"][0]["columns"]
        ]
        assert len(row["columns"]) == 4  # three versions and the unknown one
        assert sum(c["calls"] for c in row["columns"]) == row["calls"]
        assert sum(c["failures"] for c in row["columns"]) == row["failures"]
    cell = table["rows"][0]["columns"][0]
    assert cell["failure_share"] == pytest.approx(cell["failures"] / 200)
    assert cell["lift"] == pytest.approx(cell["failure_share"] / cell["call_share"])
    assert set(cell) == {
        "value", "failures", "failure_share", "calls", "call_share", "lift", "suspect",
    }  # fmt: skip
    narrow = get(
        server, "/v1/reports/breakdown", dimension="os_version", by="app_version", top="1"
    ).json()
    assert [(r["value"], len(r["columns"])) for r in narrow["rows"]] == [("17.2", 1)]


def test_timeseries_has_every_step_and_the_incidents_of_the_window(server: str) -> None:
    declared = httpx.post(
        f"{server}/v1/incidents",
        json={"scope": ["POST /v1/messages"], "start": "2026-03-02T08:00:00Z",
              "end": "2026-03-02T09:30:00Z"},
        headers=admin(),
    )  # fmt: skip
    assert declared.status_code == 201, declared.text
    answer = httpx.get(
        f"{server}/v1/reports/timeseries",
        params={"since": "2026-02-27T00:00:00Z", "until": "2026-03-05T00:00:00Z", "step": "day"},
        headers=admin(),
    )
    assert answer.status_code == 200, answer.text
    series = answer.json()
    assert series["step"] == "day"
    assert [p["start"][:10] for p in series["points"]] == [
        f"2026-{day}" for day in ("02-27", "02-28", "03-01", "03-02", "03-03", "03-04")
    ]
    assert [p["calls"] for p in series["points"][:2]] == [0, 0]
    assert sum(p["calls"] for p in series["points"]) == 2000
    assert sum(p["failures"] for p in series["points"]) == 200
    assert series["incidents"] == [
        {"id": declared.json()["id"], "endpoint": "POST /v1/messages",
         "start": "2026-03-02T08:00:00Z", "end": "2026-03-02T09:30:00Z", "severity": None},
    ]  # fmt: skip
    hourly = get(server, "/v1/reports/timeseries", endpoint="GET /v1/inbox").json()
    assert hourly["step"] == "hour"  # the default for a window of at most 7 days
    assert len(hourly["points"]) == 68  # Mar 1 10:00 to Mar 4 06:00
    assert hourly["incidents"] == []  # the incident's scope is the other endpoint
    assert sum(p["calls"] for p in hourly["points"]) < 2000


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/reports/breakdown", {"dimension": "planet"}),
        ("/v1/reports/breakdown", {"unknown": "1"}),
        ("/v1/reports/breakdown", {"since": "yesterday"}),
        ("/v1/reports/breakdown", {"since": "2026-03-01T10:00:00"}),  # no zone
        ("/v1/reports/breakdown", {"since": "1d", "until": "2d"}),
        ("/v1/reports/breakdown", {"since": "401d"}),
        ("/v1/reports/breakdown", {"since": "999999d"}),  # before year 1
        (
            "/v1/reports/breakdown",
            {"since": "9999-12-30T00:00:00Z", "until": "9999-12-31T23:59:30Z"},
        ),
        (
            "/v1/reports/timeseries",
            {"since": "1969-12-30T00:00:00Z", "until": "1970-01-02T00:00:00Z"},
        ),
        ("/v1/reports/breakdown", {"since": "2026-02-30T00:00:00Z"}),
        ("/v1/reports/breakdown", {"top": "0"}),
        ("/v1/reports/breakdown", {"top": "101"}),
        ("/v1/reports/breakdown", {"dimension": "platform", "by": "os_version", "top": "11"}),
        ("/v1/reports/breakdown", {"by": "os_version"}),
        ("/v1/reports/breakdown", {"dimension": "platform", "by": "platform"}),
        ("/v1/reports/breakdown", {"min_share": "1.5"}),
        ("/v1/reports/breakdown", {"min_lift": "inf"}),
        ("/v1/reports/breakdown", {"min_failures": "-1"}),
        ("/v1/reports/breakdown", {"endpoint": ""}),
        ("/v1/reports/breakdown", {"endpoint": "x" * 257}),
        ("/v1/reports/breakdown", {"error_code": "x" * 129}),
        ("/v1/reports/timeseries", {"error_code": "x" * 129}),
        ("/v1/reports/timeseries", {"endpoint": "bad\u0000name"}),
        ("/v1/reports/timeseries", {"step": "week"}),
        ("/v1/reports/timeseries", {"since": "30d", "step": "minute"}),  # 43 200 points
        ("/v1/reports/timeseries", {"dimension": "platform"}),
    ],
)
def test_bad_queries_are_400_problems(tmp_path: Path, path: str, params: dict[str, str]) -> None:
    with running(tmp_path, detector_interval=0.0, dispatch=False) as url:
        answer = httpx.get(f"{url}{path}", params=params, headers=admin())
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["error_code"] == "INVALID_QUERY"
        assert set(body) == {"error_code", "message", "suggestion"}
        repeated = httpx.get(f"{url}{path}?top=1&top=2", headers=admin())
        assert repeated.status_code == 400
        assert repeated.json()["error_code"] == "INVALID_QUERY"


@pytest.mark.parametrize("path", ["/v1/reports/breakdown", "/v1/reports/timeseries"])
def test_reports_need_the_admin_key(tmp_path: Path, path: str) -> None:
    with running(tmp_path, detector_interval=0.0, dispatch=False) as url:
        assert httpx.get(f"{url}{path}").status_code == 401
        assert httpx.get(f"{url}{path}", headers=APP).status_code == 401
        assert httpx.get(f"{url}{path}", headers=admin()).status_code == 200


def test_an_empty_store_reports_zeros(tmp_path: Path) -> None:
    with running(tmp_path, detector_interval=0.0, dispatch=False) as url:
        report = httpx.get(
            f"{url}/v1/reports/breakdown", params={"dimension": "platform"}, headers=admin()
        ).json()
        assert (report["total_calls"], report["values"]) == (0, [])
        assert report["other"] == {"failures": 0, "calls": 0, "values": 0}
        now = datetime.now(UTC)
        series = httpx.get(
            f"{url}/v1/reports/timeseries", params={"since": "2d"}, headers=admin()
        ).json()
        assert 48 <= len(series["points"]) <= 49
        assert {p["calls"] for p in series["points"]} == {0}
        assert datetime.fromisoformat(series["until"]) >= now - timedelta(seconds=1)


def test_populated_answers_conform_to_the_spec(server: str) -> None:
    # Schemathesis runs on an empty store; here the seed's answers meet the schemas.
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))

    def check(path: str, answer: httpx.Response) -> None:
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        validator = jsonschema.Draft202012Validator(
            {**schema["schema"], "components": spec["components"]},
            format_checker=jsonschema.FormatChecker(),
        )
        validator.validate(answer.json())

    breakdown = "/v1/reports/breakdown"
    check(breakdown, get(server, breakdown))
    check(breakdown, get(server, breakdown, dimension="app_version", top="1"))
    check(breakdown, get(server, breakdown, dimension="os_version", by="app_version"))
    httpx.post(
        f"{server}/v1/incidents",
        json={"scope": "all", "start": "2026-03-02T08:00:00Z"},
        headers=admin(),
    ).raise_for_status()
    check("/v1/reports/timeseries", get(server, "/v1/reports/timeseries"))
