"""``errdiscount report``: tables, --json, --csv, --svg/--png, exit codes 0 / 1 / 2.

Against a real HTTP server on loopback: a small Starlette app serving the contract's
report documents (tests/support/report_fixtures.py), which also records the queries it
got, so the CLI's parameters are checked as the server sees them.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk import reports
from errdiscount_sdk._cli.main import main
from errdiscount_sdk.testing import disable_backoff
from tests.support import report_fixtures as fx
from tests.support.server import serve

KEY = "report-admin-key-0123456789"


class ReportServer:
    def __init__(self, *, funnel: bool = True, hostile: bool = False) -> None:
        self.queries: list[tuple[str, dict[str, str]]] = []
        self.funnel = funnel
        self.hostile = hostile

    def app(self) -> Starlette:
        async def report(request: Request) -> Response:
            name = request.path_params["name"]
            self.queries.append((name, dict(request.query_params)))
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return _problem(401, "UNAUTHORIZED", "Missing or wrong credentials.")
            if request.query_params.get("since") == "999999d":
                return _problem(400, "INVALID_QUERY", "The window is longer than 400 days.")
            if name in ("compensation", "outcomes") and not self.funnel:
                return _problem(404, "NOT_FOUND", "No such route.")
            params = request.query_params
            if name == "breakdown":
                if "by" in params:
                    document: Any = fx.seed_crosstab()
                elif "dimension" in params:
                    document = fx.seed_breakdown(params["dimension"])
                else:
                    document = fx.seed_breakdowns()
            else:
                document = {
                    "timeseries": fx.timeseries,
                    "compensation": fx.compensation,
                    "outcomes": fx.outcomes,
                }[name]()
            if self.hostile:
                document = fx.hostile(document)
            return JSONResponse(document)

        return Starlette(routes=[Route("/v1/reports/{name}", report)])


def _problem(status: int, code: str, message: str) -> Response:
    # the body of server_stub.web._problems.error_response
    return JSONResponse(
        {"error_code": code, "message": message, "suggestion": "-"},
        status_code=status,
    )


@pytest.fixture
def server() -> Iterator[tuple[str, ReportServer]]:
    reporter = ReportServer()
    with serve(reporter.app()) as url:
        yield url, reporter


def run(url: str, *extra: str) -> int:
    return main(["report", "--server", url, "--admin-key", KEY, *extra])


def test_default_output_is_tables_with_the_suspect_marked(server, capsys) -> None:
    url, reporter = server
    assert run(url, "--since", "7d") == 0
    out = capsys.readouterr().out
    suspect_lines = [line for line in out.splitlines() if line.endswith(reports.SUSPECT_MARK)]
    assert len(suspect_lines) == 1
    assert suspect_lines[0].startswith("*") and "17.2" in suspect_lines[0]
    assert "8.0\u00d7" in suspect_lines[0]
    for dimension in ("platform", "OS version", "app version", "error code"):
        assert f"Failures by {dimension}" in out
    assert "Compensation funnel" in out and "USD: 200 issued, 80 redeemed" in out
    assert "Outcome \u201cpurchase\u201d within 30 days" in out and "Observational" in out
    assert "incident inc-1 POST /messages" in out
    names = [name for name, _ in reporter.queries]
    assert names == ["breakdown", "timeseries", "compensation", "outcomes"]
    assert all(query.get("since") == "7d" for _, query in reporter.queries)


def test_filters_and_one_dimension_reach_the_server(server, capsys) -> None:
    url, reporter = server
    args = ("--dimension", "os_version", "--endpoint", "POST /messages", "--error-code", "E1")
    assert run(url, *args, "--until", "2026-12-01T00:00:00Z") == 0
    breakdown, timeseries, compensation, _ = (query for _, query in reporter.queries)
    assert breakdown == {
        "dimension": "os_version",
        "endpoint": "POST /messages",
        "error_code": "E1",
        "until": "2026-12-01T00:00:00Z",
    }
    assert timeseries == {
        "endpoint": "POST /messages",
        "error_code": "E1",
        "until": "2026-12-01T00:00:00Z",
    }
    assert compensation == {"until": "2026-12-01T00:00:00Z"}
    out = capsys.readouterr().out
    assert "Failures by OS version" in out and "Failures by platform" not in out


def test_cross_tab(server, capsys) -> None:
    url, reporter = server
    assert run(url, "--dimension", "os_version", "--by", "app_version") == 0
    assert reporter.queries[0][1] == {"dimension": "os_version", "by": "app_version"}
    assert "70.0%*" in capsys.readouterr().out
    assert run(url, "--dimension", "os_version", "--by", "app_version", "--csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:2] == ["os_version", "app_version"]


def test_json_is_one_object_with_every_report(server, capsys) -> None:
    url, _ = server
    assert run(url, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["breakdown"] == fx.seed_breakdowns()
    assert printed["timeseries"] == fx.timeseries()
    assert printed["compensation"] == fx.compensation()
    assert printed["outcomes"] == fx.outcomes()
    assert printed["skipped"] == []


def test_csv_of_every_dimension(server, capsys) -> None:
    url, _ = server
    assert run(url, "--csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["dimension"] for row in rows} == set(reports.DIMENSIONS)
    assert [row["value"] for row in rows if row["suspect"] == "true"] == ["17.2"]


def test_svg_and_png_files(server, capsys, tmp_path) -> None:
    url, _ = server
    svg, png = tmp_path / "report.svg", tmp_path / "report.png"
    args = ["--svg", str(svg)]
    if reports.png_available():
        args += ["--png", str(png)]
    assert run(url, *args) == 0
    root = ET.fromstring(svg.read_bytes())
    desc = root.find("{http://www.w3.org/2000/svg}desc")
    assert desc is not None and desc.text == "Suspects: os_version 17.2."
    assert len(root.findall("{http://www.w3.org/2000/svg}svg")) == 7 + 3
    if reports.png_available():
        assert png.read_bytes().startswith(b"\x89PNG")
    assert f"wrote {svg}" in capsys.readouterr().err


def test_an_older_server_without_the_funnel_gets_a_note(capsys) -> None:
    reporter = ReportServer(funnel=False)
    with serve(reporter.app()) as url:
        assert run(url) == 0
        out = capsys.readouterr().out
        assert "Compensation funnel: not available on this server (404); skipped." in out
        assert "Outcome comparison: not available on this server (404); skipped." in out
        assert run(url, "--json") == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["compensation"] is None
        assert printed["skipped"] == ["compensation", "outcomes"]


def test_hostile_values_never_reach_the_terminal_raw(capsys) -> None:
    reporter = ReportServer(hostile=True)
    with serve(reporter.app()) as url:
        assert run(url) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out
    assert "\\x1b[31m" in out


def test_wrong_key_is_one_line_and_exit_1(server, capsys) -> None:
    url, _ = server
    assert main(["report", "--server", url, "--admin-key", "wrong-key-0123456789"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "errdiscount: error: breakdown: HTTP 401 UNAUTHORIZED: Missing or wrong credentials.\n"
    )


def test_a_query_the_server_refuses_is_a_usage_error(server, capsys) -> None:
    url, _ = server
    assert run(url, "--since", "999999d") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 400 INVALID_QUERY" in err


def test_the_admin_key_comes_from_the_environment(server, capsys, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("ERRDISCOUNT_ADMIN_KEY", KEY)
    assert main(["report", "--server", url, "--json"]) == 0
    monkeypatch.delenv("ERRDISCOUNT_ADMIN_KEY")
    assert main(["report", "--server", url]) == 2
    assert "--admin-key or ERRDISCOUNT_ADMIN_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "yesterday"],
        ["--until", "2026-12-01T00:00:00"],
        ["--dimension", "colour"],
        ["--json", "--csv"],
        ["--endpoint", "a\x1bb"],
    ],
)
def test_usage_errors_exit_2_in_one_line(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--server", "http://127.0.0.1:9", "--admin-key", KEY, *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("errdiscount: error:")


def test_other_usage_errors(capsys) -> None:
    base = ["report", "--admin-key", KEY]
    assert main([*base, "--server", "ftp://x"]) == 2
    assert main([*base, "--server", "http://x", "--by", "platform"]) == 2
    assert main([*base, "--server", "http://x", "--dimension", "platform", "--by", "platform"]) == 2
    assert capsys.readouterr().err.count("\n") == 3


def test_unreachable_server_and_unwritable_file(server, capsys, tmp_path) -> None:
    with disable_backoff():
        assert run("http://127.0.0.1:9") == 1
    assert capsys.readouterr().err.startswith("errdiscount: error: breakdown: ConnectionRefused")
    url, _ = server
    assert run(url, "--svg", str(tmp_path / "missing" / "r.svg")) == 1
    assert capsys.readouterr().err.strip().endswith("No such file or directory")


def test_png_without_cairosvg_is_a_usage_error(server, capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cairosvg", None)
    url, reporter = server
    assert run(url, "--png", "out.png") == 2
    assert "pip install 'errdiscount-sdk[png]'" in capsys.readouterr().err
    assert reporter.queries == []  # refused before asking the server


def test_the_seed_case_against_the_real_server(tmp_path, capsys, store_url) -> None:
    """Generated events over POST /v1/events, the real report API, on both stores."""
    import datetime as dt

    from tests.support.server_support import ADMIN_KEY, APP_KEY, running

    with running(tmp_path, database=store_url, detector_interval=0.0, dispatch=False) as url:
        fx.ingest(url, APP_KEY, fx.seed_events(dt.datetime.now(dt.UTC)))
        base = ["report", "--server", url, "--admin-key", ADMIN_KEY, "--since", "2d"]
        assert main(base) == 0
        out = capsys.readouterr().out
        suspects = [line for line in out.splitlines() if line.endswith(reports.SUSPECT_MARK)]
        assert len(suspects) == 1, out
        assert suspects[0].startswith("*") and " 17.2 " in suspects[0]
        assert "80.0%" in suspects[0] and "10.0%" in suspects[0] and "8.0\u00d7" in suspects[0]
        assert main([*base, "--csv"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [(r["dimension"], r["value"]) for r in rows if r["suspect"] == "true"] == [
            ("os_version", "17.2")
        ]
        assert main([*base, "--json", "--dimension", "os_version"]) == 0
        printed = json.loads(capsys.readouterr().out)
        (top,) = [v for v in printed["breakdown"]["values"] if v["suspect"]]
        assert (top["value"], top["lift"]) == ("17.2", pytest.approx(8.0))
        assert sum(p["failures"] for p in printed["timeseries"]["points"]) == 200
        assert printed["skipped"] == []
        assert printed["compensation"]["totals"]["issued"] == 0
        assert "Compensation funnel (" in out and "Outcome \u201cpurchase\u201d" in out


def test_the_real_server_refuses_a_wrong_key_and_a_bad_window(tmp_path, capsys) -> None:
    from tests.support.server_support import ADMIN_KEY, running

    with running(tmp_path, detector_interval=0.0, dispatch=False) as url:
        assert main(["report", "--server", url, "--admin-key", "wrong-key-0123456789"]) == 1
        assert capsys.readouterr().err == (
            "errdiscount: error: breakdown: HTTP 401 UNAUTHORIZED: Missing or wrong credentials.\n"
        )
        assert main(["report", "--server", url, "--admin-key", ADMIN_KEY, "--since", "500d"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("errdiscount: error: breakdown: HTTP 400 INVALID_QUERY: ")
        assert err.count("\n") == 1
