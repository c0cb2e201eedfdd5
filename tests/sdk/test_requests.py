from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import responses

from errdiscount_sdk import (
    AlertUrlPolicy,
    ApiError,
    BadGateway,
    BusinessError,
    ConfigurationError,
    ConnectionLost,
    ConnectionRefused,
    DnsFailure,
    InvalidResponseBody,
    ReadTimeout,
    RetryAfterTooLong,
    RetryDetails,
    RetryStop,
    ServiceUnavailable,
    TooManyRedirects,
)
from errdiscount_sdk.requests import Session
from errdiscount_sdk.testing import disable_backoff
from tests.support.faults import serve_faults

API = "https://api.example.test"
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln"
SEED = {
    "error_code": "PAY_001",
    "message": "Your card was declined by the issuing bank.",
    "suggestion": "Try another card.",
    "discount_token": TOKEN,
    "alert_url": "https://status.example.com/incidents/42",
}


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with disable_backoff():
        yield


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def test_success_returns_the_requests_response(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/ok", json={"ok": True})
    with Session() as session:
        response = session.get(f"{API}/ok")
    assert isinstance(response, requests.Response)
    assert response.json() == {"ok": True}


def test_flaky_get_is_retried(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/flaky", status=503)
    mocked.get(f"{API}/flaky", status=503)
    mocked.get(f"{API}/flaky", json={"ok": True})
    details: list[RetryDetails] = []
    with Session(on_retry=details.append) as session:
        assert session.get(f"{API}/flaky").status_code == 200
    assert len(mocked.calls) == 3
    assert [d.attempt for d in details] == [1, 2]


def test_gives_up_with_a_typed_error_in_httpx_shape(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/down", status=503, body="")
    errors: list[ApiError] = []
    with Session(on_error=errors.append) as session:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            session.get(f"{API}/down", params={"q": "1"})
    error = caught.value
    assert error.attempts == 3
    assert len(mocked.calls) == 3
    assert isinstance(error.request, httpx.Request)
    assert isinstance(error.response, httpx.Response)
    assert error.request.url == httpx.URL(f"{API}/down?q=1")
    assert errors == [error]


def test_a_retried_post_keeps_its_idempotency_key(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/pay", status=503)
    mocked.post(f"{API}/pay", json={"paid": True})
    with Session(retry_non_idempotent=True) as session:
        session.post(f"{API}/pay", json={"amount": 5})
    keys = [call.request.headers["Idempotency-Key"] for call in mocked.calls]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


def test_a_post_is_not_resent_without_an_opt_in(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/pay", status=503)
    with Session() as session, pytest.raises(ServiceUnavailable) as caught:
        session.post(f"{API}/pay", json={"amount": 5})
    assert (caught.value.attempts, len(mocked.calls)) == (1, 1)
    assert caught.value.retry_stopped_by is RetryStop.UNSAFE_RESEND


def test_an_unkeyed_post_is_not_resent(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/pay", status=503)
    with Session(idempotency_keys=False) as session:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            session.post(f"{API}/pay", data=b"x")
    assert caught.value.attempts == 1
    assert "Idempotency-Key" not in mocked.calls[0].request.headers


def test_retry_after_above_the_cap_raises(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/down", status=503, headers={"Retry-After": "600"})
    with Session() as session, pytest.raises(RetryAfterTooLong) as caught:
        session.get(f"{API}/down")
    assert caught.value.requested_wait == 600
    assert len(mocked.calls) == 1


def test_business_error_payload_discount_and_alert(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/pay", status=402, json=SEED)
    seen: list[tuple[str, Any]] = []
    with (
        Session(
            alert_policy=AlertUrlPolicy(allowed_hosts=["status.example.com"]),
            on_discount=lambda token, error: seen.append(("discount", token)),
            on_alert=lambda url, error: seen.append(("alert", url)),
        ) as session,
        pytest.raises(BusinessError) as caught,
    ):
        session.post(f"{API}/pay")
    assert caught.value.error_code == "PAY_001"
    assert caught.value.attempts == 1
    assert seen == [("discount", TOKEN), ("alert", SEED["alert_url"])]


def test_gzip_bodies_are_not_decoded_twice(mocked: responses.RequestsMock) -> None:
    import gzip
    import json

    body = gzip.compress(json.dumps(SEED).encode())
    mocked.get(
        f"{API}/pay",
        status=402,
        body=body,
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    with Session() as session, pytest.raises(BusinessError) as caught:
        session.get(f"{API}/pay")
    assert caught.value.error_code == "PAY_001"


def test_a_non_json_502_page(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/gw", status=502, body="<html>Bad Gateway</html>", content_type="text/html")
    with Session() as session, pytest.raises(BadGateway) as caught:
        session.get(f"{API}/gw")
    assert caught.value.payload is None


def test_malformed_json_with_expect_json(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/data", body='{"a": ', content_type="application/json")
    with Session(expect_json=True) as session, pytest.raises(InvalidResponseBody):
        session.get(f"{API}/data")


@pytest.mark.parametrize(
    ("raised", "expected", "attempts"),
    [
        (
            requests.exceptions.ConnectionError(
                "HTTPSConnectionPool: Max retries exceeded (Caused by NameResolutionError: "
                "Failed to resolve 'api.example.test' ([Errno -2] Name or service not known))"
            ),
            DnsFailure,
            1,
        ),
        (
            requests.exceptions.ConnectionError(
                "Failed to establish a new connection: [Errno 111] Connection refused"
            ),
            ConnectionRefused,
            3,
        ),
        (
            requests.exceptions.ConnectionError(
                "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
            ),
            ConnectionLost,
            3,
        ),
        (requests.exceptions.ChunkedEncodingError("Connection broken"), ConnectionLost, 3),
        (requests.exceptions.ReadTimeout("read timed out"), ReadTimeout, 3),
        (requests.exceptions.TooManyRedirects("Exceeded 30 redirects"), TooManyRedirects, 1),
    ],
)
def test_requests_exceptions_become_typed_errors(
    mocked: responses.RequestsMock,
    raised: Exception,
    expected: type[ApiError],
    attempts: int,
) -> None:
    mocked.get(f"{API}/x", body=raised)
    with Session() as session, pytest.raises(expected) as caught:
        session.get(f"{API}/x")
    assert caught.value.attempts == attempts
    assert len(mocked.calls) == attempts
    assert not isinstance(caught.value, requests.exceptions.RequestException)


def test_bad_urls_are_configuration_errors() -> None:
    with Session() as session, pytest.raises(ConfigurationError):
        session.get("not a url")


def test_a_one_shot_body_is_not_resent(mocked: responses.RequestsMock) -> None:
    mocked.put(f"{API}/upload", status=503)

    def chunks() -> Iterator[bytes]:
        yield b"data"

    with Session() as session, pytest.raises(ServiceUnavailable) as caught:
        session.put(f"{API}/upload", data=chunks())
    assert len(mocked.calls) == 1
    assert caught.value.retry_stopped_by is RetryStop.ONE_SHOT_BODY


def test_raising_hooks_are_logged(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{API}/down", status=404)

    def broken(error: ApiError) -> None:
        raise RuntimeError("hook bug")

    with Session(on_error=broken) as session, caplog.at_level(logging.ERROR):  # noqa: SIM117
        with pytest.raises(ApiError):
            session.get(f"{API}/down")
    assert "hook on_error raised" in caplog.text


def test_against_a_real_server_read_timeout_and_keys() -> None:
    with serve_faults() as (app, url), Session(timeout=0.1) as session:
        session.post(f"{url}/flaky/r", params={"failures": 2}, idempotency_key="pay-r")
        keys = app.keys("/flaky/r")
        assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]
        with pytest.raises(ReadTimeout) as caught:
            session.get(f"{url}/slow")
        assert caught.value.attempts == 3
        assert app.count("/slow") == 3
