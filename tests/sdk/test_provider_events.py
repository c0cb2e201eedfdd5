import datetime as dt
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from errdiscount_sdk import __version__
from errdiscount_sdk._provider.events import (
    MAX_PARAM_CHARS,
    MAX_PARAMS,
    call_event,
    normalise_path,
    query_params,
    record_safely,
    redact_params,
    rfc3339,
    template_of,
)
from errdiscount_sdk.events import FILTERED, CallEvent, InvalidEvent, Redactor, parse_event

EVENT_MEMBERS = {
    "event_id", "ts", "kind", "outcome", "user_id", "endpoint", "method", "status",
    "error_code", "category", "severity", "transient", "attempts", "duration_ms",
    "platform", "os_version", "app_version", "sdk_version", "source", "params",
}  # fmt: skip


@pytest.mark.parametrize(
    ("route", "template"),
    [
        ("/api/pay/{id}", "/api/pay/{id}"),
        ("/api/pay/{id:int}", "/api/pay/{id}"),
        ("/api/pay/<int:id>", "/api/pay/{id}"),
        ("/files/<path:name>", "/files/{name}"),
        ("/u/<name>", "/u/{name}"),
        ("api/pay/<int:id>", "/api/pay/{id}"),
        ("^api/pay/(?P<id>[0-9]+)/$", "/api/pay/{id}/"),
        ("", "/"),
    ],
)
def test_templates_in_one_spelling(route: str, template: str) -> None:
    assert template_of(route) == template


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("/api/pay/12345", "/api/pay/{id}"),
        ("/api/users/5f0c1e2a-9b3d-4c7e-8f10-1234567890ab/orders/7", "/api/users/{id}/orders/{id}"),
        ("/blobs/0123456789abcdef0123", "/blobs/{id}"),
        ("/api/pay/card", "/api/pay/card"),
        ("/api/v2/pay", "/api/v2/pay"),
        ("", "/"),
    ],
)
def test_raw_paths_lose_their_ids(path: str, normalised: str) -> None:
    assert normalise_path(path) == normalised


def test_default_redaction_matches_substrings_of_normalised_keys() -> None:
    params = {
        "password": "p",
        "api_key": "k",
        "Access-Token": "t",
        "client_secret": "s",
        "sessionid": "s",
        "Authorization": "a",
        "card_number": "4111",
        "userEmail": "a@b.c",
        "phone": "+1",
        "amount": "99.00",
        "page": ["1", "2"],
    }
    redacted = redact_params(params)
    assert {k for k, v in redacted.items() if v == FILTERED} == set(params) - {"amount", "page"}
    # The rest as the shared Redactor sends it by default: type and length.
    assert redacted["amount"] == "<str:5>" and redacted["page"] == ["<str:1>", "<str:1>"]
    assert redacted == Redactor().params(params)  # one rule set: the reporter's
    allowed = Redactor(allow_keys={"amount"}).params(params)
    assert allowed["amount"] == "99.00" and allowed["password"] == FILTERED


def test_query_params_are_capped() -> None:
    many = "&".join(f"k{i}=v" for i in range(500))
    assert len(query_params(many)) == MAX_PARAMS
    long = query_params("a=" + "x" * 5000 + "&" + "b" * 5000 + "=1")
    assert len(long["a"]) == MAX_PARAM_CHARS and "b" * MAX_PARAM_CHARS in long
    assert query_params(b"a=1&a=2&b=&c=%E4%BD%A0") == {"a": ["1", "2"], "b": "", "c": "你"}
    assert query_params("") == {}


def test_event_members_and_values() -> None:
    started = dt.datetime(2026, 8, 13, 9, 30, 0, 123456, tzinfo=dt.UTC)
    event = call_event(
        started=started,
        duration_ms=12.34567,
        method="post",
        endpoint_path="/api/pay/{id}",
        status=402,
        user_id="alice",
        params={"q": "1"},
        error_code="PAY_001",
        category="business",
        severity="minor",
    )
    assert set(event) == EVENT_MEMBERS
    assert isinstance(parse_event(event), CallEvent)  # the contract the server validates
    uuid.UUID(event["event_id"], version=4)
    assert event["ts"] == "2026-08-13T09:30:00.123Z"
    assert event["endpoint"] == "POST /api/pay/{id}" and event["method"] == "POST"
    assert (event["kind"], event["outcome"], event["source"], event["attempts"]) == (
        "call",
        "error",
        "provider",
        1,
    )
    assert event["duration_ms"] == 12.346 and event["sdk_version"] == __version__
    ok = call_event(
        started=started,
        duration_ms=1,
        method="GET",
        endpoint_path="/",
        status=302,
        user_id=None,
        params={},
    )
    assert ok["outcome"] == "ok" and ok["error_code"] is None
    assert call_event(
        started=started, duration_ms=1, method="GET", endpoint_path="/", status=None,
        user_id=None, params={},
    )["outcome"] == "error"  # fmt: skip


def test_an_event_breaking_the_contract_is_refused_and_the_middleware_records_none() -> None:
    started = dt.datetime(2026, 8, 13, 9, 30, tzinfo=dt.UTC)
    base: dict[str, Any] = {"started": started, "duration_ms": 1.0, "method": "GET",
                            "endpoint_path": "/a", "status": 200, "params": {}}  # fmt: skip
    with pytest.raises(InvalidEvent, match="control:user_id"):
        call_event(user_id="alice\nbob", **base)
    with pytest.raises(InvalidEvent, match="format:method"):
        call_event(user_id=None, **{**base, "method": "G E T"})
    # A Django-style template with a trailing slash and query marker is normalised.
    event = call_event(user_id=None, **{**base, "endpoint_path": "/pay/{id}/?"})
    assert event["endpoint"] == "GET /pay/{id}"


def test_rfc3339_converts_to_utc() -> None:
    east = dt.timezone(dt.timedelta(hours=8))
    assert rfc3339(dt.datetime(2026, 1, 1, 8, 0, tzinfo=east)) == "2026-01-01T00:00:00.000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rfc3339(dt.datetime.now(dt.UTC)))


def test_a_failing_sink_is_swallowed_and_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def record(self, event: Mapping[str, Any]) -> None:
            raise OSError("collector down")

    with caplog.at_level(logging.DEBUG, logger="errdiscount_sdk.provider"):
        record_safely(Broken(), {"event_id": "e1"})
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "e1" in caplog.text
    record_safely(None, {"event_id": "e2"})  # no sink: nothing happens


def test_the_middleware_takes_a_redactor_or_a_function_and_defaults_to_the_shared_rules() -> None:
    from errdiscount_sdk._provider.core import MiddlewareCore

    params = {"page": "2", "token": "t-1"}
    assert MiddlewareCore.build().redact(params) == {"page": "<str:1>", "token": FILTERED}
    allowed = MiddlewareCore.build(redact=Redactor(allow_keys={"page"}))
    assert allowed.redact(params) == {"page": "2", "token": FILTERED}
    custom = MiddlewareCore.build(redact=lambda p: {"n": len(p)})
    assert custom.redact(params) == {"n": 2}
