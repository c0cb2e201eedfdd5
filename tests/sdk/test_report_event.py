"""The event contract: construction and `parse_event` validate the same rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from errdiscount_sdk._model.errors import ErrDiscountError, InvalidEvent
from errdiscount_sdk._report.event import (
    CALL_MEMBERS,
    MAX_EXTENSIONS,
    MAX_PARAMS_BYTES,
    CallEvent,
    OutcomeEvent,
    normalize_endpoint,
    parse_event,
)

EVENT_ID = "3f9301c6-0531-46a1-9fbc-10b254232a77"


def call(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": EVENT_ID,
        "ts": "2030-01-01T12:00:00.123Z",
        "kind": "call",
        "outcome": "error",
        "user_id": "user-1",
        "endpoint": "POST /api/pay/{id}",
        "method": "POST",
        "status": 402,
        "error_code": "PAY_001",
        "category": "business",
        "severity": "minor",
        "transient": False,
        "attempts": 1,
        "duration_ms": 12.5,
        "platform": "ios",
        "os_version": "17.2",
        "app_version": "3.1.0",
        "sdk_version": "0.1.0",
        "source": "client",
        "params": {"amount": "<int>", "card": "[Filtered]"},
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not ...}


def test_a_full_call_event_round_trips() -> None:
    event = parse_event(call(count=3, segment="vip"))
    assert isinstance(event, CallEvent)
    assert event.to_json() == call(count=3, segment="vip")
    assert parse_event(event.to_json()) == event
    assert event.calls == 3
    assert event.timestamp() == datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_to_json_has_every_member_but_the_optional_ones() -> None:
    members = set(CallEvent(outcome="ok", method="GET", endpoint="GET /").to_json())
    assert members == set(CALL_MEMBERS) - {"count", "segment", "extensions"}


def test_unknown_members_are_kept_as_extensions() -> None:
    event = parse_event(call(future_member={"a": 1}, extensions={"error.type": "503"}))
    assert isinstance(event, CallEvent)
    assert dict(event.extensions) == {"future_member": {"a": 1}, "error.type": "503"}
    assert event.to_json()["extensions"] == {"future_member": {"a": 1}, "error.type": "503"}


def test_params_and_extensions_are_frozen() -> None:
    event = parse_event(call(params={"items": [1, {"a": "b"}]}))
    assert isinstance(event, CallEvent)
    with pytest.raises(TypeError):
        event.params["x"] = 1  # type: ignore[index]
    assert event.params["items"][0] == 1  # type: ignore[index]
    assert event.to_json()["params"] == {"items": [1, {"a": "b"}]}


def test_an_outcome_event_round_trips() -> None:
    raw = {
        "event_id": EVENT_ID,
        "ts": "2030-01-01T12:00:00.000Z",
        "kind": "outcome",
        "name": "purchase",
        "user_id": "user-1",
        "value": 99.5,
    }
    event = parse_event(raw)
    assert isinstance(event, OutcomeEvent)
    assert event.to_json() == raw


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2030-01-01T12:00:00Z", "2030-01-01T12:00:00.000Z"),
        ("2030-01-01T12:00:00.5+00:00", "2030-01-01T12:00:00.500Z"),
        ("2030-01-01T12:00:00.123456789z", "2030-01-01T12:00:00.123Z"),
    ],
)
def test_ts_is_normalised(ts: str, expected: str) -> None:
    assert parse_event(call(ts=ts)).ts == expected


def test_a_datetime_ts_is_accepted_in_code_and_converted_to_utc() -> None:
    moment = datetime(2030, 1, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    event = CallEvent(outcome="ok", method="GET", endpoint="GET /", ts=moment)  # type: ignore[arg-type]
    assert event.ts == "2030-01-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_id": ...}, "missing:event_id"),
        ({"event_id": "not-a-uuid"}, "format:event_id"),
        ({"event_id": 5}, "type:event_id"),
        ({"ts": "2030-01-01T12:00:00+08:00"}, "format:ts"),
        ({"ts": "2030-01-01 12:00:00Z"}, "format:ts"),
        ({"ts": "2030-02-30T12:00:00Z"}, "format:ts"),
        ({"ts": 1893499200}, "type:ts"),
        ({"kind": "span"}, "value:kind"),
        ({"kind": ...}, "missing:kind"),
        ({"outcome": "maybe"}, "value:outcome"),
        ({"endpoint": "POST /api/pay/123?x=1"}, "format:endpoint"),
        ({"endpoint": "POST"}, "format:endpoint"),
        ({"endpoint": "GET /api/pay"}, "mismatch:endpoint"),
        ({"endpoint": "POST /" + "a" * 400}, "too_long:endpoint"),
        ({"method": "post", "endpoint": "post /x"}, "format:method"),
        ({"status": 99}, "range:status"),
        ({"status": "402"}, "type:status"),
        ({"status": True}, "type:status"),
        ({"category": "bogus"}, "value:category"),
        ({"severity": "apocalyptic"}, "value:severity"),
        ({"transient": "no"}, "type:transient"),
        ({"attempts": 0}, "range:attempts"),
        ({"attempts": 1.0}, "type:attempts"),
        ({"duration_ms": -1}, "range:duration_ms"),
        ({"duration_ms": float("nan")}, "range:duration_ms"),
        ({"duration_ms": "5"}, "type:duration_ms"),
        ({"source": "server"}, "value:source"),
        ({"user_id": ""}, "empty:user_id"),
        ({"user_id": "u" * 257}, "too_long:user_id"),
        ({"user_id": "alice\nbob"}, "control:user_id"),
        ({"error_code": "PAY\x00"}, "control:error_code"),
        ({"user_id": 42}, "type:user_id"),
        ({"count": 0}, "range:count"),
        ({"params": ["a"]}, "type:params"),
        ({"params": {"a": {1, 2}}}, "type:params"),
        ({"params": {"a": "x" * MAX_PARAMS_BYTES}}, "too_large:params"),
        ({"params": {"a": float("inf")}}, "range:params"),
        ({"extensions": {"bad name!": 1}}, "name:extensions"),
        ({"extensions": {f"e{i}": i for i in range(MAX_EXTENSIONS + 1)}}, "too_many:extensions"),
        ({"extensions": {"e": "x" * 5000}}, "too_large:extensions"),
        ({"extensions": "x"}, "type:extensions"),
    ],
)
def test_invalid_call_events_are_refused_with_a_reason(
    overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(call(**overrides))
    assert caught.value.reason == reason
    assert isinstance(caught.value, ErrDiscountError)
    assert isinstance(caught.value, ValueError)


def test_deep_params_are_refused() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(20):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(InvalidEvent, match="too_deep:params"):
        parse_event(call(params=deep))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "type:event"),
        ("event", "type:event"),
        ({f"m{i}": i for i in range(100)}, "too_many:members"),
        ({"kind": "outcome", "event_id": EVENT_ID, "ts": "2030-01-01T00:00:00Z"}, "missing:name"),
        (
            {
                "kind": "outcome",
                "event_id": EVENT_ID,
                "ts": "2030-01-01T00:00:00Z",
                "name": "x",
                "value": [1],
            },
            "type:value",
        ),
    ],
)
def test_other_invalid_events(data: object, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(data)
    assert caught.value.reason == reason


def test_construction_validates_like_parsing() -> None:
    with pytest.raises(InvalidEvent, match="value:outcome"):
        CallEvent(outcome="bad", method="GET", endpoint="GET /")  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent, match="mismatch:endpoint"):
        CallEvent(outcome="ok", method="GET", endpoint="POST /")


@pytest.mark.parametrize(
    ("method", "route", "expected"),
    [
        ("post", "/api/pay/{id}", "POST /api/pay/{id}"),
        ("GET", "api/items/", "GET /api/items"),
        ("GET", "/", "GET /"),
        ("get", "/search?q=secret#frag", "GET /search"),
    ],
)
def test_normalize_endpoint(method: str, route: str, expected: str) -> None:
    assert normalize_endpoint(method, route) == expected


@pytest.mark.parametrize(("method", "route"), [("G ET", "/"), ("GET", "/a b"), ("", "/")])
def test_normalize_endpoint_refuses_garbage(method: str, route: str) -> None:
    with pytest.raises(InvalidEvent):
        normalize_endpoint(method, route)
