from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from errdiscount_sdk import (
    AlertUrlPolicy,
    ApiError,
    BadGateway,
    BusinessError,
    Client,
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
def client(server: tuple[FaultApp, str]) -> Iterator[Client]:
    with Client(base_url=server[1], timeout=2.0) as client:
        yield client


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def hook(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeVerifier:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.tokens: list[str] = []

    def verify(self, token: str) -> object:
        self.tokens.append(token)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_success_returns_the_httpx_response(client: Client, app: FaultApp) -> None:
    response = client.get("/ok")
    assert isinstance(response, httpx.Response)
    assert response.json() == {"ok": True}
    assert app.count("/ok") == 1


def test_flaky_get_is_retried_until_it_succeeds(server: tuple[FaultApp, str]) -> None:
    app, url = server
    details: list[RetryDetails] = []
    with Client(base_url=url, on_retry=details.append) as client:
        response = client.get("/flaky/a", params={"failures": 2})
    assert response.json()["attempt"] == 3
    assert app.count("/flaky/a") == 3
    assert [d.attempt for d in details] == [1, 2]
    assert details[0].attributes["http.response.status_code"] == 503
    assert details[0].attributes["error.type"] == "503"
    assert isinstance(details[0].cause, ServiceUnavailable)


def test_gives_up_after_max_attempts_with_the_last_error(server: tuple[FaultApp, str]) -> None:
    app, url = server
    errors: list[ApiError] = []
    with Client(base_url=url, on_error=errors.append) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.get("/flaky/b", params={"failures": 9})
    assert caught.value.attempts == 3
    assert app.count("/flaky/b") == 3
    assert errors == [caught.value]
    assert caught.value.response is not None and caught.value.response.status_code == 503


@pytest.fixture
def opted_in(server: tuple[FaultApp, str]) -> Iterator[Client]:
    with Client(base_url=server[1], timeout=2.0, retry_non_idempotent=True) as client:
        yield client


def test_a_retried_post_carries_the_same_idempotency_key(opted_in: Client, app: FaultApp) -> None:
    opted_in.post("/flaky/c", params={"failures": 2}, json={"amount": 5})
    keys = app.keys("/flaky/c")
    assert len(keys) == 3
    assert keys[0] and len(set(keys)) == 1
    opted_in.post("/flaky/d", params={"failures": 0})
    assert app.keys("/flaky/d")[0] not in (None, keys[0])


def test_patch_gets_a_key_and_get_put_do_not(opted_in: Client, app: FaultApp) -> None:
    client = opted_in
    client.patch("/flaky/e", params={"failures": 1})
    client.put("/flaky/f", params={"failures": 1})
    client.get("/flaky/g", params={"failures": 1})
    assert len(set(app.keys("/flaky/e"))) == 1 and app.keys("/flaky/e")[0]
    assert app.keys("/flaky/f") == [None, None]
    assert app.keys("/flaky/g") == [None, None]


def test_an_explicit_key_is_used_on_every_attempt(client: Client, app: FaultApp) -> None:
    client.post("/flaky/h", params={"failures": 1}, idempotency_key="order-42")
    assert app.keys("/flaky/h") == ["order-42", "order-42"]


def test_a_post_without_a_key_is_never_resent_after_reaching_the_server(
    server: tuple[FaultApp, str],
) -> None:
    app, url = server
    with Client(base_url=url, idempotency_keys=False) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.post("/flaky/i", params={"failures": 1})
    assert caught.value.attempts == 1
    assert app.keys("/flaky/i") == [None]


def test_retry_after_is_honoured(server: tuple[FaultApp, str]) -> None:
    app, url = server
    details: list[RetryDetails] = []
    with Client(base_url=url, on_retry=details.append) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.get("/unavailable", params={"after": "2"})
    assert [d.wait for d in details] == [2.0, 2.0]
    assert caught.value.retry_after == 2.0
    assert app.count("/unavailable") == 3


def test_retry_after_above_the_cap_raises_at_once(client: Client, app: FaultApp) -> None:
    with pytest.raises(RetryAfterTooLong) as caught:
        client.get("/unavailable", params={"after": "120"})
    assert caught.value.requested_wait == 120
    assert caught.value.limit == 30
    assert caught.value.attempts == 1
    assert app.count("/unavailable") == 1


def test_retry_after_as_an_http_date(client: Client, app: FaultApp) -> None:
    date = email.utils.formatdate(time.time() + 3600, usegmt=True)
    with pytest.raises(RetryAfterTooLong) as caught:
        client.get("/unavailable", params={"after": date})
    assert 3500 < caught.value.requested_wait <= 3600
    assert app.count("/unavailable") == 1


def test_read_timeout_is_retried_for_get_only(server: tuple[FaultApp, str]) -> None:
    app, url = server
    with Client(base_url=url, timeout=0.1, idempotency_keys=False) as client:
        with pytest.raises(ReadTimeout) as caught:
            client.get("/slow")
        assert caught.value.attempts == 3
        assert app.count("/slow") == 3
        with pytest.raises(ReadTimeout) as caught:
            client.post("/slow")
        assert caught.value.attempts == 1
    assert app.count("/slow") == 4


def test_connection_refused_is_retried_even_for_a_post_without_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port now
    with disable_backoff(), Client(idempotency_keys=False) as client:  # noqa: SIM117
        with pytest.raises(ConnectionRefused) as caught:
            client.post(f"http://127.0.0.1:{port}/x")
    assert caught.value.attempts == 3
    assert caught.value.category is ErrorCategory.NETWORK


def test_business_error_carries_the_seed_payload(client: Client, app: FaultApp) -> None:
    with pytest.raises(BusinessError) as caught:
        client.post("/business")
    error = caught.value
    assert error.attempts == 1
    assert error.payload is not None
    assert error.error_code == "PAY_001"
    assert error.payload.suggestion == "Try another card or contact your bank."
    assert app.count("/business") == 1


def test_without_a_verifier_on_discount_gets_the_raw_token(
    server: tuple[FaultApp, str],
) -> None:
    recorder = Recorder()
    with Client(base_url=server[1], on_discount=recorder.hook("discount")) as client:  # noqa: SIM117
        with pytest.raises(BusinessError) as caught:
            client.get("/business")
    assert recorder.calls == [("discount", (SEED_TOKEN, caught.value))]
    assert caught.value.discount is None


def test_a_verified_token_is_handed_out(server: tuple[FaultApp, str]) -> None:
    recorder = Recorder()
    verified = object()
    verifier = FakeVerifier(verified)
    with (
        Client(
            base_url=server[1], verifier=verifier, on_discount=recorder.hook("discount")
        ) as client,
        pytest.raises(BusinessError) as caught,
    ):
        client.get("/business")
    assert verifier.tokens == [SEED_TOKEN]
    assert caught.value.discount is verified
    assert caught.value.discount_rejection is None
    assert recorder.calls == [("discount", (verified, caught.value))]


def test_a_refused_token_is_kept_out_with_its_reason(
    server: tuple[FaultApp, str], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    refusal = TokenExpired("expired")
    with (  # noqa: SIM117
        Client(
            base_url=server[1],
            verifier=FakeVerifier(refusal),
            on_discount=recorder.hook("discount"),
        ) as client,
        caplog.at_level(logging.DEBUG, logger="errdiscount_sdk"),
    ):
        with pytest.raises(BusinessError) as caught:
            client.get("/business")
    assert caught.value.discount is None
    assert caught.value.discount_rejection is refusal
    assert recorder.calls == []
    assert "expired" in caplog.text
    assert SEED_TOKEN not in caplog.text


def test_a_crashing_verifier_does_not_break_the_call(server: tuple[FaultApp, str]) -> None:
    with Client(base_url=server[1], verifier=FakeVerifier(RuntimeError("bug"))) as client:  # noqa: SIM117
        with pytest.raises(BusinessError) as caught:
            client.get("/business")
    assert isinstance(caught.value.discount_rejection, TokenError)
    assert caught.value.discount is None


def test_on_alert_gets_an_allowed_url(server: tuple[FaultApp, str]) -> None:
    recorder = Recorder()
    with (
        Client(
            base_url=server[1], alert_policy=STATUS_POLICY, on_alert=recorder.hook("alert")
        ) as client,
        pytest.raises(BusinessError) as caught,
    ):
        client.get("/business")
    assert recorder.calls == [("alert", (SEED_ALERT_URL, caught.value))]
    assert caught.value.alert_url == SEED_ALERT_URL
    assert caught.value.alert_url_rejection is None


@pytest.mark.parametrize(
    ("policy", "alert", "reason"),
    [
        (None, SEED_ALERT_URL, "no_policy"),
        (STATUS_POLICY, "javascript:alert(1)", "scheme"),
        (STATUS_POLICY, "https://status.example.com.evil.test/x", "host"),
        (STATUS_POLICY, "https://status.example.com@evil.test/x", "userinfo"),
    ],
)
def test_a_refused_alert_url_is_logged_and_recorded_not_raised(
    server: tuple[FaultApp, str],
    caplog: pytest.LogCaptureFixture,
    policy: AlertUrlPolicy | None,
    alert: str,
    reason: str,
) -> None:
    recorder = Recorder()
    with Client(base_url=server[1], alert_policy=policy, on_alert=recorder.hook("alert")) as c:  # noqa: SIM117
        with caplog.at_level(logging.WARNING, logger="errdiscount_sdk"):
            with pytest.raises(BusinessError) as caught:
                c.get("/business", params={"alert": alert})
    assert recorder.calls == []
    assert caught.value.alert_url is None
    rejection = caught.value.alert_url_rejection
    assert rejection is not None and rejection.reason == reason
    assert f"alert_url refused ({reason})" in caplog.text


def test_hook_order_is_discount_alert_error(server: tuple[FaultApp, str]) -> None:
    recorder = Recorder()
    with (
        Client(
            base_url=server[1],
            alert_policy=STATUS_POLICY,
            on_discount=recorder.hook("discount"),
            on_alert=recorder.hook("alert"),
            on_error=recorder.hook("error"),
        ) as client,
        pytest.raises(BusinessError),
    ):
        client.get("/business")
    assert recorder.names() == ["discount", "alert", "error"]


def test_raising_hooks_are_logged_and_never_break_the_call(
    server: tuple[FaultApp, str], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("hook bug")

    with (
        Client(
            base_url=server[1],
            alert_policy=STATUS_POLICY,
            on_retry=broken,
            on_discount=broken,
            on_alert=broken,
            on_error=broken,
        ) as client,
        caplog.at_level(logging.ERROR, logger="errdiscount_sdk"),
    ):
        assert client.get("/flaky/j", params={"failures": 1}).status_code == 200
        with pytest.raises(BusinessError):
            client.get("/business")
    for name in ("on_retry", "on_discount", "on_alert", "on_error"):
        assert f"hook {name} raised" in caplog.text


def test_a_non_json_502_page_is_a_bad_gateway_without_payload(
    client: Client, app: FaultApp
) -> None:
    with pytest.raises(BadGateway) as caught:
        client.get("/bad-gateway")
    assert caught.value.payload is None
    assert caught.value.attempts == 3
    assert app.count("/bad-gateway") == 3


def test_not_found_is_not_retried(client: Client, app: FaultApp) -> None:
    with pytest.raises(NotFound) as caught:
        client.get("/status/404")
    assert caught.value.attempts == 1
    assert app.count("/status/404") == 1


def test_malformed_json_200_passes_unless_json_is_expected(client: Client, app: FaultApp) -> None:
    assert client.get("/malformed-json").status_code == 200
    with pytest.raises(InvalidResponseBody) as caught:
        client.get("/malformed-json", expect_json=True)
    assert caught.value.category is ErrorCategory.DATA_FORMAT
    assert caught.value.attempts == 1
    assert app.count("/malformed-json") == 2


def test_expect_json_can_be_the_client_default(server: tuple[FaultApp, str]) -> None:
    with Client(base_url=server[1], expect_json=True) as client:
        assert client.get("/ok").json() == {"ok": True}
        with pytest.raises(InvalidResponseBody):
            client.get("/malformed-json")
        assert client.get("/malformed-json", expect_json=False).status_code == 200


def test_a_validator_can_reject_a_json_body(client: Client) -> None:
    def must_have_items(data: Any) -> None:
        if "items" not in data:
            raise KeyError("items")

    assert client.get("/ok", validator=lambda data: data["ok"] is True).status_code == 200
    with pytest.raises(InvalidResponseBody):
        client.get("/ok", validator=lambda data: False)
    with pytest.raises(InvalidResponseBody) as caught:
        client.get("/ok", validator=must_have_items)
    assert isinstance(caught.value.__cause__, KeyError)


def test_the_budget_is_shared_by_the_calls_of_one_client(server: tuple[FaultApp, str]) -> None:
    app, url = server
    policy = RetryPolicy(budget=RetryBudget(max_tokens=2, token_ratio=0))
    with Client(base_url=url, retry=policy) as client:
        attempts = []
        for _ in range(3):
            with pytest.raises(ServiceUnavailable) as caught:
                client.get("/unavailable", params={"after": "0"})
            attempts.append(caught.value.attempts)
    assert attempts == [3, 1, 1]
    assert app.count("/unavailable") == 5


def test_each_default_client_has_its_own_budget() -> None:
    with Client() as first, Client() as second:
        assert first.retry is not None and second.retry is not None
        assert first.retry.budget is not second.retry.budget


def test_retry_none_makes_one_attempt(server: tuple[FaultApp, str]) -> None:
    app, url = server
    with Client(base_url=url, retry=None) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.get("/flaky/k", params={"failures": 1})
    assert caught.value.attempts == 1
    assert app.count("/flaky/k") == 1


def test_wrapping_an_existing_httpx_client(server: tuple[FaultApp, str]) -> None:
    app, url = server
    with httpx.Client(base_url=url, headers={"X-App": "demo"}) as http:
        client = Client(http_client=http)
        assert client.get("/flaky/l", params={"failures": 1}).status_code == 200
        client.close()
        assert not http.is_closed  # the caller owns it
    assert app.count("/flaky/l") == 2


def test_close_and_context_manager_close_the_pool(server: tuple[FaultApp, str]) -> None:
    with Client(base_url=server[1]) as client:
        client.get("/ok")
    assert client._http.is_closed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transport": httpx.MockTransport(lambda r: httpx.Response(200)), "http_client": None},
        {"base_url": "http://x.test"},
        {"headers": {"a": "b"}},
    ],
)
def test_http_client_excludes_other_connection_settings(kwargs: dict[str, Any]) -> None:
    with httpx.Client() as http:
        arguments = {**kwargs, "http_client": http}
        with pytest.raises(ConfigurationError):
            Client(**arguments)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retry": 3},
        {"alert_policy": ["status.example.com"]},
        {"verifier": object()},
        {"on_error": "not callable"},
        {"max_json_bytes": 0},
        {"http_client": object()},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Client(**kwargs)


def test_a_bad_url_is_a_configuration_error_not_retried(client: Client) -> None:
    with pytest.raises(ConfigurationError):
        client.get("ftp://files.example.test/x")
    with pytest.raises(ConfigurationError):
        client.get("http://[::1")


def test_repr_hides_credentials() -> None:
    with Client(base_url="https://user:s3cret@api.example.test/v1?key=abc") as client:
        assert "s3cret" not in repr(client)
        assert "abc" not in repr(client)
