"""``errdiscount backtest``: the replay engine and the CLI command."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from errdiscount_sdk._cli.main import main
from errdiscount_sdk._provider.backtest import run_backtest

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def event(seconds, user, outcome="error", endpoint="POST /api/pay", **extra):
    ts = (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    body = {
        "event_id": f"e-{user}-{seconds}",
        "ts": ts,
        "kind": "call",
        "outcome": outcome,
        "user_id": user,
        "endpoint": endpoint,
        "method": endpoint.split()[0],
        "status": 503 if outcome == "error" else 200,
        "error_code": None,
        "category": "protocol" if outcome == "error" else None,
        "severity": "moderate",
        "transient": True,
        "attempts": 3,
        "duration_ms": 20,
        "platform": "android",
        "os_version": "14",
        "app_version": "2.0.0",
        "sdk_version": "0.1.0",
        "source": "client",
        "params": {},
    }
    body.update(extra)
    return json.dumps(body)


def timeline() -> list[str]:
    """u1 persistently failing (episode), then a 10-minute outage of GET /api/feed."""
    lines = [event(t, "u1") for t in (0, 150, 300)]
    for minute in range(10, 40):
        for i in range(25):
            outcome = "error" if 15 <= minute < 25 else "ok"
            lines.append(event(minute * 60 + i, f"f{i:02d}", outcome, "GET /api/feed"))
    lines.append(event(2500, "u2", "ok", kind="outcome"))  # not a call: ignored
    return lines


@pytest.fixture
def events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(timeline()) + "\n")
    return path


def test_run_backtest_reports_what_would_have_happened() -> None:
    result = run_backtest(line.encode() for line in timeline())
    assert result.events == 3 + 30 * 25
    assert result.skipped == 0
    out = result.to_json()
    assert out["incidents"] == [
        {
            "id": out["incidents"][0]["id"],
            "endpoint": "GET /api/feed",
            "start": "2026-03-01T00:15:00Z",
            "end": "2026-03-01T00:24:24Z",
            "severity": "minor",
            "affected_users": 25,
            "manual": False,
        }
    ]
    episode = out["episodes"][0]
    assert (episode["user_id"], episode["start"], episode["end"], episode["failures"]) == (
        "u1",
        "2026-03-01T00:00:00Z",
        "2026-03-01T00:05:00Z",
        3,
    )
    by_reason = {}
    for comp in out["compensations"]:
        by_reason.setdefault(comp["reason"], []).append(comp)
    assert [c["user_id"] for c in by_reason["episode"]] == ["u1"]
    assert by_reason["episode"][0]["ref"] == episode["id"]
    assert len(by_reason["incident"]) == 25
    assert {c["ref"] for c in by_reason["incident"]} == {out["incidents"][0]["id"]}
    assert out["cost"] == {"coupon": {"USD": 50}, "membership_extension": {"days": 30}}
    # the outage users' episodes were covered by the incident
    assert result.withheld == {"incident": 25}


def test_replays_give_identical_reports() -> None:
    first = run_backtest(timeline()).to_json()
    second = run_backtest(timeline()).to_json()
    assert first == second


def test_bad_and_out_of_order_lines_are_skipped_with_their_number() -> None:
    lines = timeline()[:3]
    lines.insert(1, "{torn")
    lines.insert(2, event(-60, "u9"))  # earlier than the previous event
    lines.insert(3, "")
    lines.append(json.dumps({"kind": "call", "ts": "yesterday"}))
    result = run_backtest(lines)
    assert result.events == 3
    assert result.skipped == 3
    assert [r.line for r in result.skip_reasons] == [2, 3, 7]
    assert "time order" in str(result.skip_reasons[1])
    assert len(result.compensations) == 1


def test_still_open_at_the_end_of_input() -> None:
    lines = [event(t, "u1") for t in (0, 150, 300)]
    out = run_backtest(lines).to_json()
    assert out["episodes"][0]["end"] is None
    assert len(out["compensations"]) == 1


def test_cli_json(events_file, capsys) -> None:
    assert main(["backtest", str(events_file), "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert set(printed) == {"episodes", "incidents", "compensations", "cost"}
    assert printed == run_backtest(timeline()).to_json()
    assert captured.err == ""


def test_cli_summary(events_file, capsys) -> None:
    assert main(["backtest", str(events_file)]) == 0
    out = capsys.readouterr().out
    assert "753 call events" in out
    assert "Incidents: 1" in out and "minor, 25 affected users" in out
    assert "Compensations: 26 (episode 1, incident 25)" in out
    assert "coupon: 50 USD" in out


def test_cli_with_policy(events_file, tmp_path, capsys) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[detection.episode]\nmin_failures = 4\n")
    assert main(["backtest", str(events_file), "--json", "--policy", str(policy)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [c["reason"] for c in printed["compensations"]].count("episode") == 0


def test_cli_reports_skipped_lines_on_stderr(tmp_path, capsys) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(["nope", *timeline()[:3]]) + "\n")
    assert main(["backtest", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "errdiscount: skipped line 1: not a JSON object"
    assert len(json.loads(captured.out)["compensations"]) == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "missing.jsonl: No such file or directory"),
        ("bad_policy", "policy: detection.episode.min_failures: must be an integer"),
        ("policy_missing", "policy: nothere.toml: cannot read"),
    ],
)
def test_cli_usage_errors_exit_2(setup, message, events_file, tmp_path, capsys) -> None:
    args = ["backtest", str(events_file)]
    if setup == "missing":
        args = ["backtest", str(tmp_path / "missing.jsonl")]
    elif setup == "bad_policy":
        policy = tmp_path / "policy.toml"
        policy.write_text("[detection.episode]\nmin_failures = 0\n")
        args += ["--policy", str(policy)]
    else:
        args += ["--policy", str(tmp_path / "nothere.toml")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err
