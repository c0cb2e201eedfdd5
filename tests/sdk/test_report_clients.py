"""Client, AsyncClient and requests Session with a reporter: one event per call, after retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from errdiscount_sdk import ApiError, AsyncClient, Client, ConfigurationError
from errdiscount_sdk._report.reporter import ErrorReporter
from errdiscount_sdk.requests import Session
from errdiscount_sdk.testing import disable_backoff
from tests.sdk._collector import Collector, serve_collector
from tests.support.faults import serve_faults


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    with serve_collector() as served:
        yield served


@pytest.fixture
def api() -> Iterator[str]:
    with serve_faults() as (_, url):
        yield url


@pytest.fixture
def reporter(collector: tuple[Collector, str]) -> Iterator[ErrorReporter]:
    _, url = collector
    reporter = ErrorReporter(url, app_key="k", user_id="user-1", flush_interval=60.0)
    yield reporter
    reporter.close()


def sent(reporter: ErrorReporter, collector: tuple[Collector, str]) -> list[dict[str, Any]]:
    assert reporter.flush(5)
    return collector[0].events


def test_a_call_retried_to_success_is_one_ok_event(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with disable_backoff(), Client(base_url=api, reporter=reporter) as client:
        client.get("/flaky/a", params={"failures": "2"})
    (event,) = sent(reporter, collector)
    assert event["outcome"] == "ok"
    assert event["attempts"] == 3
    assert event["count"] == 1
    assert event["status"] == 200
    assert event["endpoint"] == "GET /flaky/a"
    assert event["user_id"] == "user-1"
    assert event["source"] == "client"


def test_a_call_failing_after_retries_is_one_error_event(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with (
        disable_backoff(),
        Client(base_url=api, reporter=reporter) as client,
        pytest.raises(ApiError),
    ):
        client.get("/unavailable", params={"after": "0"})
    (event,) = sent(reporter, collector)
    assert (event["outcome"], event["status"], event["attempts"]) == ("error", 503, 3)
    assert (event["category"], event["severity"], event["transient"]) == (
        "protocol",
        "severe",
        True,
    )
    assert event["extensions"] == {"error.type": "503"}
    assert event["duration_ms"] > 0
    assert "count" not in event


def test_the_route_template_comes_from_the_call(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with Client(base_url=api, reporter=reporter) as client:
        with pytest.raises(ApiError):
            client.post("/business", endpoint="/pay/{order}", json={"amount": 5})
        with pytest.raises(ApiError):
            client.get("/status/404")  # no template given: ids are guessed
    business, not_found = sent(reporter, collector)
    assert business["endpoint"] == "POST /pay/{order}"
    assert (business["error_code"], business["category"]) == ("PAY_001", "business")
    assert not_found["endpoint"] == "GET /status/{id}"


def test_no_secret_of_the_request_reaches_the_collector(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with (
        Client(
            base_url="http://user:S3CRET-0@" + api.removeprefix("http://"), reporter=reporter
        ) as client,
        pytest.raises(ApiError),
    ):
        client.post(
            "/business",
            params={"access_token": "S3CRET-1", "page": "2"},
            json={
                "password": "S3CRET-2",
                "userEmail": "S3CRET-3@example.com",
                "card": {"number": "S3CRET-4"},
                "amount": 12,
                "note": "S3CRET-5",
            },
            headers={"Authorization": "Bearer S3CRET-6"},
        )
    (event,) = sent(reporter, collector)
    assert b"S3CRET" not in collector[0].wire_bytes
    assert event["params"] == {
        "access_token": "[Filtered]",
        "page": "<str:1>",
        "password": "[Filtered]",
        "userEmail": "[Filtered]",
        "card": "[Filtered]",
        "amount": "<int>",
        "note": "<str:8>",
    }


def test_configuration_errors_are_not_reported(
    reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with Client(reporter=reporter) as client, pytest.raises(ConfigurationError):
        client.get("ftp://example.com/")
    assert reporter.flush(5)
    assert collector[0].events == []


def test_the_reporter_must_be_an_error_reporter() -> None:
    with pytest.raises(ConfigurationError):
        Client(reporter="http://collector")  # type: ignore[arg-type]


async def test_async_client_reports_the_final_outcome(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with disable_backoff():
        async with AsyncClient(base_url=api, reporter=reporter) as client:
            await client.get("/ok")
            with pytest.raises(ApiError):
                await client.get("/unavailable", params={"after": "0"}, endpoint="/unavailable")
    assert await asyncio.to_thread(reporter.flush, 5)
    events = {event["outcome"]: event for event in collector[0].events}
    assert events["ok"]["endpoint"] == "GET /ok"
    assert events["error"]["attempts"] == 3


def test_requests_session_reports_the_final_outcome(
    api: str, reporter: ErrorReporter, collector: tuple[Collector, str]
) -> None:
    with disable_backoff(), Session(reporter=reporter) as session:
        session.get(f"{api}/flaky/r", params={"failures": "1"})
        with pytest.raises(ApiError):
            session.post(
                f"{api}/business", json={"pin": "1", "token": "S3CRET-7"}, endpoint="/pay/{id}"
            )
    events = sent(reporter, collector)
    ok = next(event for event in events if event["outcome"] == "ok")
    error = next(event for event in events if event["outcome"] == "error")
    assert (ok["endpoint"], ok["attempts"], ok["count"]) == ("GET /flaky/r", 2, 1)
    assert (error["endpoint"], error["error_code"]) == ("POST /pay/{id}", "PAY_001")
    assert error["params"] == {"pin": "<str:1>", "token": "[Filtered]"}
    assert b"S3CRET" not in collector[0].wire_bytes
