"""Report documents shaped exactly as ANALYTICS_CONTRACT / docs/analytics.md says.

The seed's case: one iOS version (17.2) is 10% of the calls and 80% of the failures, so it
(and nothing else) is the suspect, with a lift of 8. Shared by the renderer, CLI and
dashboard tests.
"""

from __future__ import annotations

import copy
from typing import Any

SINCE = "2026-11-24T12:00:00Z"
UNTIL = "2026-12-01T12:00:00Z"
HOSTILE = "<script>alert(1)</script>\"'&\x00\x1b[31m\u202e=cmd|' /C calc'!A0"


def _value(
    value: str | None, failures: int, calls: int, totals: tuple[int, int], suspect: bool = False
) -> dict[str, Any]:
    total_failures, total_calls = totals
    failure_share = failures / total_failures
    call_share = calls / total_calls
    return {
        "value": value,
        "failures": failures,
        "failure_share": failure_share,
        "calls": calls,
        "call_share": call_share,
        "lift": round(failure_share / call_share, 6) if call_share else None,
        "first_seen": "2026-11-24T12:05:00Z",
        "last_seen": "2026-12-01T11:55:00Z",
        "suspect": suspect,
    }


def _breakdown(dimension: str, values: list[tuple[str | None, int, int, bool]]) -> dict[str, Any]:
    totals = (1000, 20000)
    return {
        "dimension": dimension,
        "since": SINCE,
        "until": UNTIL,
        "total_failures": totals[0],
        "total_calls": totals[1],
        "values": [_value(v, f, c, totals, s) for v, f, c, s in values],
        "other": {"failures": 0, "calls": 0, "values": 0},
    }


def seed_breakdowns() -> list[dict[str, Any]]:
    """Every dimension, in the contract's order; only os_version 17.2 is a suspect."""
    return [
        _breakdown("platform", [("ios", 900, 12000, False), ("android", 100, 8000, False)]),
        _breakdown(
            "os_version",
            [
                ("17.2", 800, 2000, True),
                ("17.1", 100, 10000, False),
                ("14", 60, 5000, False),
                (None, 40, 3000, False),
            ],
        ),
        _breakdown("app_version", [("5.1.0", 600, 12000, False), ("5.0.3", 400, 8000, False)]),
        _breakdown("sdk_version", [("0.9.0", 1000, 20000, False)]),
        _breakdown("endpoint", [("POST /messages", 1000, 20000, False)]),
        # the failure's own dimensions: successes have neither, so no lift and no suspect
        _no_lift(_breakdown("error_code", [("MSG_FAILED", 1000, 1000, False)])),
        _no_lift(_breakdown("category", [("network", 1000, 1000, False)])),
    ]


def _no_lift(report: dict[str, Any]) -> dict[str, Any]:
    for value in report["values"]:
        value["lift"] = None
    return report


def seed_breakdown(dimension: str) -> dict[str, Any]:
    return next(b for b in seed_breakdowns() if b["dimension"] == dimension)


def seed_crosstab() -> dict[str, Any]:
    def cell(value: str, failures: int, calls: int, suspect: bool = False) -> dict[str, Any]:
        item = _value(value, failures, calls, (1000, 20000), suspect)
        del item["first_seen"], item["last_seen"]
        return item

    return {
        "dimension": "os_version",
        "by": "app_version",
        "since": SINCE,
        "until": UNTIL,
        "total_failures": 1000,
        "total_calls": 20000,
        "rows": [
            {
                "value": "17.2",
                "failures": 800,
                "calls": 2000,
                "columns": [cell("5.1.0", 700, 1200, True), cell("5.0.3", 100, 800)],
            },
            {
                "value": "17.1",
                "failures": 100,
                "calls": 10000,
                "columns": [cell("5.1.0", 60, 6000), cell("5.0.3", 40, 4000)],
            },
        ],
    }


def timeseries() -> dict[str, Any]:
    points = []
    for hour in range(24):
        failures = 80 if 9 <= hour < 12 else 5
        points.append(
            {"start": f"2026-11-30T{hour:02d}:00:00Z", "calls": 800, "failures": failures}
        )
    return {
        "since": "2026-11-30T00:00:00Z",
        "until": "2026-12-01T00:00:00Z",
        "step": "hour",
        "points": points,
        "incidents": [
            {
                "id": "inc-1",
                "endpoint": "POST /messages",
                "start": "2026-11-30T09:00:00Z",
                "end": "2026-11-30T12:00:00Z",
                "severity": "severe",
            },
            {
                "id": "inc-2",
                "endpoint": None,
                "start": "2026-11-30T22:00:00Z",
                "end": None,
                "severity": None,
            },
        ],
    }


def compensation() -> dict[str, Any]:
    return {
        "since": SINCE,
        "until": UNTIL,
        "group_by": "period",
        "totals": {
            "issued": 100,
            "shown": 80,
            "redeemed": 40,
            "reversed": 2,
            "cost": [{"unit": "USD", "issued": 200, "redeemed": 80}],
        },
        "groups": [
            {
                "key": "2026-11-30",
                "issued": 60,
                "shown": 50,
                "redeemed": 30,
                "reversed": 1,
                "cost": [{"unit": "USD", "issued": 120, "redeemed": 60}],
            },
            {
                "key": "2026-12-01",
                "issued": 40,
                "shown": 30,
                "redeemed": 10,
                "reversed": 1,
                "cost": [{"unit": "USD", "issued": 80, "redeemed": 20}],
            },
        ],
        "budgets": [
            {
                "kind": "coupon",
                "campaign": None,
                "unit": "USD",
                "limit": 1000,
                "spent": 80,
                "remaining": 920,
            }
        ],
    }


def outcomes() -> dict[str, Any]:
    return {
        "since": SINCE,
        "until": UNTIL,
        "name": "purchase",
        "within_days": 30,
        "confidence": 0.95,
        "method": "wilson",
        "groups": [
            {
                "group": "redeemed",
                "users": 40,
                "converted": 34,
                "rate": 0.85,
                "ci_low": 0.71,
                "ci_high": 0.93,
            },
            {
                "group": "offered_not_redeemed",
                "users": 60,
                "converted": 30,
                "rate": 0.5,
                "ci_low": 0.38,
                "ci_high": 0.62,
            },
            {
                "group": "not_offered",
                "users": 0,
                "converted": 0,
                "rate": None,
                "ci_low": None,
                "ci_high": None,
            },
        ],
        "note": "Observational, not causal: users who redeem may differ from those who do not.",
    }


def hostile(document: Any) -> Any:
    """A copy of ``document`` with every dimension value, key and id replaced by `HOSTILE`."""
    result = copy.deepcopy(document)
    items = result if isinstance(result, list) else [result]
    for item in items:
        for value in item.get("values", []):
            value["value"] = HOSTILE
        for group in item.get("groups", []):
            if "key" in group:
                group["key"] = HOSTILE
        for incident in item.get("incidents", []):
            incident["id"] = incident["endpoint"] = HOSTILE
        for row in item.get("rows", []):
            row["value"] = HOSTILE
        if "note" in item:
            item["note"] = HOSTILE
        if "name" in item:
            item["name"] = HOSTILE
    return result


#: os_version → (calls, failures) of `seed_events`: 17.2 has 10 % of the calls, 80 % of
#: the failures (lift 8); every other version fails less than its share.
SEED_VERSIONS = {
    "16.7": (450, 10),
    "17.1": (450, 10),
    "17.2": (200, 160),
    "17.3": (450, 10),
    "17.4": (450, 10),
}


def seed_events(end: Any) -> list[dict[str, Any]]:
    """The seed's case as call events over the 24 hours before ``end`` (an aware datetime).

    Successes are sent aggregated (``count: 5``) as reporters do; every other dimension is
    spread evenly over calls and failures, so only ``os_version`` 17.2 stands out.
    """
    import datetime as dt
    import uuid

    shapes: list[tuple[str, bool, int]] = []
    for version, (calls, failures) in SEED_VERSIONS.items():
        shapes += [(version, True, 1)] * failures
        shapes += [(version, False, 5)] * ((calls - failures) // 5)
    start = end - dt.timedelta(hours=24)
    step = (end - start - dt.timedelta(minutes=5)) / len(shapes)
    events = []
    for index, (version, failed, count) in enumerate(shapes):
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=index + 1)),
            "ts": (start + step * ((index * 7919) % len(shapes))).isoformat(),
            "kind": "call",
            "outcome": "error" if failed else "ok",
            "user_id": f"u{index % 50}",
            "endpoint": ("POST /v1/messages", "GET /v1/inbox")[index % 2],
            "method": ("POST", "GET")[index % 2],
            "status": 503 if failed else 200,
            "platform": "ios",
            "os_version": version,
            "app_version": ("5.0.0", "5.1.0", "5.2.0")[index % 3],
            "sdk_version": "0.4.0",
            "source": "client",
            "count": count,
        }
        if failed:
            event.update(error_code="MSG_SEND_FAILED", category="protocol", severity="moderate")
        events.append(event)
    return events


def ingest(base_url: str, app_key: str, events: list[dict[str, Any]]) -> None:
    """POST the events in batches of 500; every one must be accepted."""
    import httpx

    for start in range(0, len(events), 500):
        answer = httpx.post(
            f"{base_url}/v1/events",
            json={"events": events[start : start + 500]},
            headers={"Authorization": f"Bearer {app_key}"},
        )
        assert answer.status_code == 202, answer.text
        assert answer.json().get("rejected", []) == [], answer.text
