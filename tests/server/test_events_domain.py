"""Server-side event validation and redaction (server_stub/domain/_events.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server_stub.domain._events import FILTERED, Rejected, event_json, parse_event, redact
from server_stub.store import EventRecord

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def document(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": "2030-01-01T11:59:00Z",
        "kind": "call",
        "outcome": "ok",
        "endpoint": "GET /api/orders/{id}",
        "source": "provider",
    }
    values.update(overrides)
    return values


def parsed(**overrides: Any) -> EventRecord:
    result = parse_event(document(**overrides), now=NOW)
    assert isinstance(result, EventRecord), result
    return result


def reason(**overrides: Any) -> str:
    result = parse_event(document(**overrides), now=NOW)
    assert isinstance(result, Rejected), result
    return result.reason


def test_a_minimal_event_gets_defaults() -> None:
    record = parsed(event_id="6F1D3C52-8A0E-4F57-9A43-2F1B7E0C9D11")
    assert record.event_id == "6f1d3c52-8a0e-4f57-9a43-2f1b7e0c9d11"  # canonical form
    assert (record.method, record.attempts, record.count) == ("GET", 1, 1)
    assert record.ts == datetime(2030, 1, 1, 11, 59, tzinfo=UTC)
    assert (record.params, record.extensions) == ({}, {})


@pytest.mark.parametrize(
    ("overrides", "member"),
    [
        ({"event_id": None}, "event_id"),
        ({"event_id": "123"}, "event_id"),
        ({"ts": "2030-01-01T11:59:00"}, "ts"),  # no zone
        ({"ts": "2030-01-03T00:00:00Z"}, "ts"),  # more than a day ahead
        ({"ts": "1999-12-31T23:59:59Z"}, "ts"),
        ({"kind": "pageview"}, "kind"),
        ({"outcome": "maybe"}, "outcome"),
        ({"source": "server"}, "source"),
        ({"endpoint": "/api/pay"}, "endpoint"),  # no method
        ({"endpoint": "GET /api/pay?user=1"}, "endpoint"),
        ({"endpoint": "GET /api/a b"}, "endpoint"),
        ({"method": "get"}, "method"),
        ({"status": True}, "status"),
        ({"status": 99}, "status"),
        ({"attempts": 0}, "attempts"),
        ({"count": 2_000_000}, "count"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"transient": "yes"}, "transient"),
        ({"category": "weird"}, "category"),
        ({"severity": "catastrophic"}, "severity"),
        ({"user_id": "u" * 257}, "user_id"),
        ({"user_id": "a\nb"}, "user_id"),
        ({"params": [1, 2]}, "params"),
        ({"params": {"blob": "x" * 9000}}, "params"),
        (
            {"params": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}},
            "params",
        ),
        ({"params": {str(i): i for i in range(65)}}, "params"),
        ({f"x{i}": i for i in range(17)}, "unknown members"),
        ({"bad name!": 1}, "unknown member names"),
    ],
)
def test_each_rule_rejects_with_a_reason_naming_the_member(
    overrides: dict[str, Any], member: str
) -> None:
    assert member in reason(**overrides)


def test_not_an_object_is_rejected() -> None:
    assert isinstance(parse_event(["x"], now=NOW), Rejected)


@pytest.mark.parametrize(
    "key",
    ["password", "user_password", "Passwd", "pwd", "clientSecret", "access_token", "Authorization",
     "X-Api-Key", "apikey", "session_id", "Cookie", "csrftoken", "jwt", "bearer", "credentials",
     "card_number", "creditCard", "IBAN", "ssn", "userEmail", "email",
     "phone", "mobileNo", "otp_code", "id_card", "idCard", "ID-Card", "密码", "手机号", "身份证号"],
)  # fmt: skip
def test_sensitive_keys_are_filtered_by_normalised_substring(key: str) -> None:
    assert redact({key: "s3cr3t"}) == {key: FILTERED}


def test_redaction_reaches_every_depth_and_keeps_the_rest() -> None:
    value = {"amount": 3, "items": [{"sku": "a", "token": "t"}], "meta": {"Auth-Header": {"x": 1}}}
    assert redact(value) == {
        "amount": 3,
        "items": [{"sku": "a", "token": FILTERED}],
        "meta": {"Auth-Header": FILTERED},
    }
    record = parsed(params=value, session_hint="abc", retry_note="ok")
    assert record.params == redact(value)
    # Unknown members are extensions, redacted the same way.
    assert record.extensions == {"session_hint": FILTERED, "retry_note": "ok"}


def test_event_json_shows_every_member_and_the_extensions() -> None:
    record = parsed(status=503, outcome="error", note="x", ts="2030-01-01T12:59:00+01:00")
    shown = event_json(record)
    assert shown["ts"] == "2030-01-01T11:59:00Z"
    assert shown["note"] == "x" and shown["status"] == 503 and shown["user_id"] is None
    again = parse_event(shown, now=NOW)
    assert again == record  # what GET shows parses back to the same event


def test_a_day_of_clock_skew_is_tolerated() -> None:
    assert parsed(ts=(NOW + timedelta(hours=23)).isoformat()).ts == NOW + timedelta(hours=23)
