from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from errdiscount_sdk import (
    AlertUrlPolicy,
    ApiError,
    AsyncClient,
    BadGateway,
    BusinessError,
    ConfigurationError,
    ConnectionRefused,
    ErrorCategory,
    InvalidResponseBody,
    NotFound,
    ReadTimeout,
    RetryAfterTooLong,
    RetryBudget,
    RetryDetails,
    RetryPolicy,
    ServiceUnavailable,
    TokenError,
    TokenExpired,
)
from errdiscount_sdk.testing import disable_backoff
from tests.support.faults import SEED_ALERT_URL, SEED_TOKEN, FaultApp, serve_faults

STATUS_POLICY = AlertUrlPolicy(allowed_hosts=["status.example.com"])


@pytest.fixture
def server() -> Iterator[tuple[FaultApp, str]]:
    with disable_backoff(), serve_faults() as pair:
        yield pair


@pytest.fixture
def app(server: tuple[FaultApp, str]) -> FaultApp:
    return server[0]


@pytest.fixture
async def client(server: tuple[FaultApp, str]) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=server[1], timeout=2.0) as client:
        yield client


class Recorder:
    """Async hooks recording their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def hook(self, name: str) -> Any:
        async def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class AsyncVerifier:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    async def verify(self, token: str) -> object:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_success_returns_the_httpx_response(client: AsyncClient, app: FaultApp) -> None:
    response = await client.get("/ok")
    assert isinstance(response, httpx.Response)
    assert response.json() == {"ok": True}
    assert app.count("/ok") == 1


async def test_flaky_get_is_retried_with_an_async_on_retry(
    server: tuple[FaultApp, str],
) -> None:
    app, url = server
    details: list[RetryDetails] = []

    async def on_retry(d: RetryDetails) -> None:
        details.append(d)

    async with AsyncClient(base_url=url, on_retry=on_retry) as client:
        response = await client.get("/flaky/a", params={"failures": 2})
    assert response.json()["attempt"] == 3
    assert app.count("/flaky/a") == 3
    assert [d.attempt for d in details] == [1, 2]
    assert details[1].attributes["http.request.resend_count"] == 2


async def test_sync_hooks_work_too(server: tuple[FaultApp, str]) -> None:
    errors: list[ApiError] = []
    async with AsyncClient(base_url=server[1], on_error=errors.append) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.get("/flaky/b", params={"failures": 9})
    assert caught.value.attempts == 3
    assert errors == [caught.value]


async def test_a_retried_post_carries_the_same_idempotency_key(
    server: tuple[FaultApp, str],
) -> None:
    app, url = server
    async with AsyncClient(base_url=url, retry_non_idempotent=True) as client:
        await client.post("/flaky/c", params={"failures": 2}, json={"amount": 5})
        keys = app.keys("/flaky/c")
        assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
        await client.get("/flaky/d", params={"failures": 1})
    assert app.keys("/flaky/d") == [None, None]


async def test_a_post_without_a_key_is_not_resent(server: tuple[FaultApp, str]) -> None:
    app, url = server
    async with AsyncClient(base_url=url, idempotency_keys=False) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.post("/flaky/e", params={"failures": 1})
    assert caught.value.attempts == 1
    assert app.count("/flaky/e") == 1


async def test_retry_after_is_honoured_and_capped(server: tuple[FaultApp, str]) -> None:
    app, url = server
    details: list[RetryDetails] = []
    async with AsyncClient(base_url=url, on_retry=details.append) as client:
        with pytest.raises(ServiceUnavailable):
            await client.get("/unavailable", params={"after": "2"})
        assert [d.wait for d in details] == [2.0, 2.0]
        date = email.utils.formatdate(time.time() + 3600, usegmt=True)
        with pytest.raises(RetryAfterTooLong) as caught:
            await client.get("/unavailable", params={"after": date})
    assert caught.value.attempts == 1
    assert app.count("/unavailable") == 4


async def test_read_timeout_is_retried_for_get_only(server: tuple[FaultApp, str]) -> None:
    app, url = server
    async with AsyncClient(base_url=url, timeout=0.1, idempotency_keys=False) as client:
        with pytest.raises(ReadTimeout) as caught:
            await client.get("/slow")
        assert caught.value.attempts == 3
        with pytest.raises(ReadTimeout) as caught:
            await client.post("/slow")
        assert caught.value.attempts == 1
    assert app.count("/slow") == 4


async def test_connection_refused_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with disable_backoff():
        async with AsyncClient(idempotency_keys=False) as client:
            with pytest.raises(ConnectionRefused) as caught:
                await client.post(f"http://127.0.0.1:{port}/x")
    assert caught.value.attempts == 3


async def test_business_error_with_verified_token_and_allowed_alert(
    server: tuple[FaultApp, str],
) -> None:
    recorder = Recorder()
    verified = object()
    async with AsyncClient(
        base_url=server[1],
        verifier=AsyncVerifier(verified),
        alert_policy=STATUS_POLICY,
        on_discount=recorder.hook("discount"),
        on_alert=recorder.hook("alert"),
        on_error=recorder.hook("error"),
    ) as client:
        with pytest.raises(BusinessError) as caught:
            await client.post("/business")
    error = caught.value
    assert error.error_code == "PAY_001"
    assert error.discount is verified
    assert error.alert_url == SEED_ALERT_URL
    assert recorder.calls == [
        ("discount", (verified, error)),
        ("alert", (SEED_ALERT_URL, error)),
        ("error", (error,)),
    ]


async def test_raw_token_without_verifier(server: tuple[FaultApp, str]) -> None:
    recorder = Recorder()
    async with AsyncClient(base_url=server[1], on_discount=recorder.hook("d")) as client:
        with pytest.raises(BusinessError) as caught:
            await client.get("/business")
    assert recorder.calls == [("d", (SEED_TOKEN, caught.value))]


async def test_refused_token_and_refused_alert(
    server: tuple[FaultApp, str], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    refusal = TokenExpired("expired")
    async with AsyncClient(
        base_url=server[1],
        verifier=AsyncVerifier(refusal),
        alert_policy=STATUS_POLICY,
        on_discount=recorder.hook("discount"),
        on_alert=recorder.hook("alert"),
    ) as client:
        with caplog.at_level(logging.DEBUG, logger="errdiscount_sdk"):  # noqa: SIM117
            with pytest.raises(BusinessError) as caught:
                await client.get("/business", params={"alert": "javascript:alert(1)"})
    assert recorder.calls == []
    assert caught.value.discount_rejection is refusal
    assert caught.value.alert_url_rejection is not None
    assert caught.value.alert_url_rejection.reason == "scheme"
    assert SEED_TOKEN not in caplog.text


async def test_a_crashing_verifier_does_not_break_the_call(
    server: tuple[FaultApp, str],
) -> None:
    async with AsyncClient(
        base_url=server[1], verifier=AsyncVerifier(RuntimeError("bug"))
    ) as client:
        with pytest.raises(BusinessError) as caught:
            await client.get("/business")
    assert isinstance(caught.value.discount_rejection, TokenError)


async def test_raising_hooks_are_logged(
    server: tuple[FaultApp, str], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("hook bug")

    async with AsyncClient(base_url=server[1], on_retry=broken, on_error=broken) as client:
        with caplog.at_level(logging.ERROR, logger="errdiscount_sdk"):
            assert (await client.get("/flaky/f", params={"failures": 1})).status_code == 200
            with pytest.raises(NotFound):
                await client.get("/status/404")
    assert "hook on_retry raised" in caplog.text
    assert "hook on_error raised" in caplog.text


async def test_non_json_502_and_malformed_json(client: AsyncClient, app: FaultApp) -> None:
    with pytest.raises(BadGateway) as caught:
        await client.get("/bad-gateway")
    assert caught.value.payload is None
    assert caught.value.attempts == 3
    assert (await client.get("/malformed-json")).status_code == 200
    with pytest.raises(InvalidResponseBody) as invalid:
        await client.get("/malformed-json", expect_json=True)
    assert invalid.value.category is ErrorCategory.DATA_FORMAT
    with pytest.raises(InvalidResponseBody):
        await client.get("/ok", validator=lambda data: False)


async def test_the_budget_is_shared_by_the_calls_of_one_client(
    server: tuple[FaultApp, str],
) -> None:
    app, url = server
    policy = RetryPolicy(budget=RetryBudget(max_tokens=2, token_ratio=0))
    async with AsyncClient(base_url=url, retry=policy) as client:
        attempts = []
        for _ in range(3):
            with pytest.raises(ServiceUnavailable) as caught:
                await client.get("/unavailable", params={"after": "0"})
            attempts.append(caught.value.attempts)
    assert attempts == [3, 1, 1]
    assert app.count("/unavailable") == 5


async def test_retry_none_makes_one_attempt(server: tuple[FaultApp, str]) -> None:
    async with AsyncClient(base_url=server[1], retry=None) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.get("/flaky/g", params={"failures": 1})
    assert caught.value.attempts == 1


async def test_wrapping_an_existing_httpx_async_client(server: tuple[FaultApp, str]) -> None:
    async with httpx.AsyncClient(base_url=server[1]) as http:
        client = AsyncClient(http_client=http)
        assert (await client.get("/ok")).status_code == 200
        await client.aclose()
        assert not http.is_closed


async def test_configuration_errors() -> None:
    with httpx.Client() as sync_http, pytest.raises(ConfigurationError):
        AsyncClient(http_client=sync_http)  # type: ignore[arg-type]
    async with AsyncClient() as client:
        with pytest.raises(ConfigurationError):
            await client.get("ftp://files.example.test/x")
