"""Server-side event validation and redaction (server_stub/domain/_events.py).

The server validates with the SDK's `parse_event` and redacts with the SDK's `Redactor`
(deny-list only): these tests check the server's own rules on top, that the reasons are
the SDK's, and that the second redaction pass holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from errdiscount_sdk.events import FILTERED, TRUNCATED, CallEvent, Redactor, parse_event
from server_stub.domain._events import SERVER_REDACTOR, Rejected, event_json, to_record
from server_stub.store import EventRecord, OutcomeRecord

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def document(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "ts": "2030-01-01T11:59:00Z",
        "kind": "call",
        "outcome": "ok",
        "endpoint": "GET /api/orders/{id}",
        "method": "GET",
        "source": "provider",
    }
    values.update(overrides)
    return values


def parsed(**overrides: Any) -> EventRecord:
    result = to_record(document(**overrides), now=NOW)
    assert isinstance(result, EventRecord), result
    return result


def reason(**overrides: Any) -> str:
    result = to_record(document(**overrides), now=NOW)
    assert isinstance(result, Rejected), result
    return result.reason


def test_a_minimal_event_gets_defaults() -> None:
    record = parsed(event_id="6F1D3C52-8A0E-4F57-9A43-2F1B7E0C9D11")
    assert record.event_id == "6f1d3c52-8a0e-4f57-9a43-2f1b7e0c9d11"  # canonical form
    assert (record.method, record.attempts, record.count) == ("GET", 1, 1)
    assert record.ts == datetime(2030, 1, 1, 11, 59, tzinfo=UTC)
    assert (record.params, record.extensions) == ({}, {})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"event_id": None}, "type:event_id"),
        ({"event_id": "123"}, "format:event_id"),
        ({"ts": "2030-01-01T11:59:00"}, "format:ts"),  # no zone
        ({"ts": "2030-01-01T11:59:00+01:00"}, "format:ts"),  # UTC only
        ({"ts": "2030-01-03T00:00:00Z"}, "range:ts"),  # more than a day ahead (server rule)
        ({"ts": "1999-12-31T23:59:59Z"}, "range:ts"),  # before 2000 (server rule)
        ({"kind": "pageview"}, "value:kind"),
        ({"outcome": "maybe"}, "value:outcome"),
        ({"source": "server"}, "value:source"),
        ({"endpoint": "/api/pay"}, "format:endpoint"),  # no method
        ({"endpoint": "GET /api/pay?user=1"}, "format:endpoint"),
        ({"endpoint": "GET /api/a b"}, "format:endpoint"),
        ({"endpoint": "POST /api/pay"}, "mismatch:endpoint"),  # method is GET
        ({"method": "get", "endpoint": "get /x"}, "format:method"),
        ({"status": True}, "type:status"),
        ({"status": 99}, "range:status"),
        ({"attempts": 0}, "range:attempts"),
        ({"count": 20_000_000}, "range:count"),
        ({"duration_ms": -1}, "range:duration_ms"),
        ({"duration_ms": None}, "type:duration_ms"),
        ({"transient": "yes"}, "type:transient"),
        ({"category": "weird"}, "value:category"),
        ({"severity": "catastrophic"}, "value:severity"),
        ({"user_id": "u" * 257}, "too_long:user_id"),
        ({"user_id": "a\nb"}, "control:user_id"),
        ({"params": [1, 2]}, "type:params"),
        ({"params": {"blob": "x" * 9000}}, "too_large:params"),
        ({f"x{i}": i for i in range(33)}, "too_many:extensions"),
        ({"bad name!": 1}, "name:extensions"),
    ],
)
def test_each_rule_rejects_with_the_sdk_reason(overrides: dict[str, Any], expected: str) -> None:
    assert reason(**overrides) == expected


def test_method_is_required_and_outcome_events_become_outcome_records() -> None:
    without = document()
    del without["method"]
    assert to_record(without, now=NOW) == Rejected("missing:method")
    ident = str(uuid.uuid4()).upper()
    outcome = {"event_id": ident, "ts": "2030-01-01T11:00:00Z", "kind": "outcome",
               "name": "purchase", "user_id": "alice", "value": 9.5,
               "coupon": {"password": "hunter2", "code": "X1"}}  # fmt: skip
    record = to_record(outcome, now=NOW)
    assert record == OutcomeRecord(
        event_id=ident.lower(),  # the canonical dedupe key
        ts=datetime(2030, 1, 1, 11, tzinfo=UTC),
        name="purchase",
        user_id="alice",
        value=9.5,
        extensions={"coupon": {"password": FILTERED, "code": "X1"}},  # redacted again
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ts": "2031-01-01T00:00:00Z"}, "range:ts"),  # more than a day ahead
        ({"ts": "1999-12-31T23:59:59Z"}, "range:ts"),
        ({"ts": "0031-09-03T15:39:06.12Z"}, "range:ts"),  # found by schemathesis: was a 500
        ({"name": ""}, "empty:name"),
        ({"value": float("nan")}, "range:value"),
        ({"value": {"nested": 1}}, "type:value"),
    ],
)
def test_outcome_events_keep_the_server_rules(overrides: dict[str, Any], expected: str) -> None:
    outcome = {"event_id": str(uuid.uuid4()), "ts": "2030-01-01T11:00:00Z", "kind": "outcome",
               "name": "purchase", **overrides}  # fmt: skip
    assert to_record(outcome, now=NOW) == Rejected(expected)


def test_not_an_object_is_rejected() -> None:
    assert to_record(["x"], now=NOW) == Rejected("type:event")


@pytest.mark.parametrize(
    "key",
    ["password", "user_password", "Passwd", "pwd", "clientSecret", "access_token", "Authorization",
     "X-Api-Key", "apikey", "session_id", "Cookie", "csrftoken", "jwt", "bearer", "credentials",
     "card_number", "creditCard", "IBAN", "ssn", "userEmail", "email",
     "phone", "mobileNo", "otp_code", "id_card", "idCard", "ID-Card", "密码", "手机号", "身份证号"],
)  # fmt: skip
def test_sensitive_keys_are_filtered_by_normalised_substring(key: str) -> None:
    assert parsed(params={key: "s3cr3t", "amount": 3}).params == {key: FILTERED, "amount": 3}


def test_redaction_reaches_every_depth_keeps_the_rest_and_covers_extensions() -> None:
    value = {"amount": 3, "items": [{"sku": "a", "token": "t"}], "meta": {"Auth-Header": {"x": 1}}}
    expected = {
        "amount": 3,
        "items": [{"sku": "a", "token": FILTERED}],
        "meta": {"Auth-Header": FILTERED},
    }
    assert SERVER_REDACTOR.params(value) == expected
    record = parsed(params=value, session_hint="abc", retry_note="ok")
    assert record.params == expected
    # Unknown members are extensions, redacted the same way.
    assert record.extensions == {"session_hint": FILTERED, "retry_note": "ok"}


def test_the_second_pass_keeps_what_the_app_redacted_unchanged() -> None:
    app_side = Redactor(allow_keys={"currency"}).params(
        {"password": "hunter2", "amount": 12, "currency": "EUR", "note": "hi", "deep": {"a": 1}}
    )
    assert parsed(params=app_side).params == app_side  # idempotent: markers survive


def test_over_the_redactors_caps_is_truncated_not_rejected() -> None:
    wide = parsed(params={f"k{i}": i for i in range(65)}).params
    assert len(wide) == 51 and wide[TRUNCATED] == 15
    deep: dict[str, Any] = {"j": 1}
    for name in "ihgfedcba":
        deep = {name: deep}
    assert TRUNCATED in str(parsed(params=deep).params)


def test_event_json_shows_every_member_and_passes_parse_event() -> None:
    members = {"user_id": "alice", "status": 503, "outcome": "error", "error_code": "PAY_DOWN",
               "category": "protocol", "severity": "severe", "transient": True, "attempts": 3,
               "duration_ms": 812.5, "platform": "ios", "os_version": "17.4",
               "app_version": "5.1.0", "sdk_version": "0.4.0", "count": 4, "segment": "vip"}  # fmt: skip
    record = parsed(note="x", ts="2030-01-01T11:59:00.25Z", **members)
    shown = event_json(record)
    assert shown["ts"] == "2030-01-01T11:59:00.250Z" and shown["note"] == "x"
    assert {name: shown[name] for name in members} == members  # every member is carried
    event = parse_event(shown)  # what GET shows is a valid event of the contract
    assert isinstance(event, CallEvent) and event.extensions == {"note": "x"}
    assert to_record(shown, now=NOW) == record  # ... and parses back to the same record


def test_a_day_of_clock_skew_is_tolerated() -> None:
    ahead = NOW + timedelta(hours=23)
    assert parsed(ts=ahead.isoformat()).ts == ahead


def test_a_call_in_a_year_before_1000_is_out_of_range_not_an_error() -> None:
    # The SDK normalizes such a ts without the year's leading zeros ("31-09-03T...").
    assert to_record(document(ts="0031-09-03T15:39:06Z"), now=NOW) == Rejected("range:ts")
