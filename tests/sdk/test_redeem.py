"""RedemptionClient / AsyncRedemptionClient against a real server (and a fault-injecting one)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from errdiscount_sdk import (
    AlreadyRedeemed,
    AsyncRedemptionClient,
    BudgetExhausted,
    BusinessError,
    ConfigurationError,
    ConnectionRefused,
    ErrorCategory,
    IdempotencyConflict,
    InvalidResponseBody,
    NotFound,
    RedemptionClient,
    RetryAfterTooLong,
    RetryBudget,
    RetryDetails,
    RetryPolicy,
    ServiceUnavailable,
    Severity,
    TokenRejected,
    UserCapReached,
)
from errdiscount_sdk._http import retry as _retry
from errdiscount_sdk.testing import disable_backoff
from tests.support.redeem_faults import flaky_app, in_flight_then_ok
from tests.support.server import serve
from tests.support.server_support import APP_KEY, admin, running, token


@pytest.fixture
def url(tmp_path):
    with running(tmp_path) as base:
        yield base


def test_redeem_get_and_compensations(url) -> None:
    with RedemptionClient(url, api_key=APP_KEY) as client:
        redemption = client.redeem(token("alice"))
        assert redemption.subject == "alice"
        assert redemption.grant.points == 100
        assert client.get(redemption.id) == redemption
        listing = client.compensations("alice")
        assert listing.redeemed == (redemption,)
        with pytest.raises(NotFound):
            client.get("rdm_missing")


def test_typed_errors(url) -> None:
    import httpx

    httpx.put(
        f"{url}/v1/budgets/points/tight", json={"total": 1, "unit": "points"}, headers=admin()
    )
    httpx.put(
        f"{url}/v1/user-caps/trial_extension",
        json={"max_redemptions": 0, "period_seconds": 60},
        headers=admin(),
    )
    minted = token()
    with RedemptionClient(url) as client:
        client.redeem(minted)
        with pytest.raises(AlreadyRedeemed) as already:
            client.redeem(minted)
        with pytest.raises(TokenRejected) as rejected:
            client.redeem("not.a.token")
        with pytest.raises(BudgetExhausted):
            client.redeem(token(incident="tight"))
        with pytest.raises(UserCapReached):
            client.redeem(
                token(compensation={"kind": "trial_extension", "amount": 1, "unit": "days"})
            )
        client.redeem(token(), idempotency_key="same")
        with pytest.raises(IdempotencyConflict):
            client.redeem(token(), idempotency_key="same")
    error = already.value
    assert isinstance(error, BusinessError)
    assert error.category is ErrorCategory.BUSINESS
    assert error.status_code == 409
    assert error.error_code == "TOKEN_ALREADY_REDEEMED"
    assert error.response is not None and error.request is not None
    assert rejected.value.error_code == "TOKEN_MALFORMED"


async def test_async_client(url) -> None:
    minted = token("zoe")
    async with AsyncRedemptionClient(url, api_key=APP_KEY) as client:
        first = await client.redeem(minted, idempotency_key="k")
        replay = await client.redeem(minted, idempotency_key="k")
        assert replay == first
        with pytest.raises(AlreadyRedeemed):
            await client.redeem(minted)
        assert (await client.get(first.id)).jti == first.jti


def test_retries_transient_failures_with_the_same_key() -> None:
    app, keys = flaky_app([503, 502])
    with serve(app) as base, RedemptionClient(base) as client:
        assert client.redeem("t").id == "rdm_1"
    assert len(keys) == 3
    assert keys[0] is not None and len(set(keys)) == 1


def test_gives_up_after_three_attempts() -> None:
    app, keys = flaky_app([503, 503, 503, 503])
    with (
        serve(app) as base,
        RedemptionClient(base) as client,
        pytest.raises(ServiceUnavailable) as info,
    ):
        client.redeem("t")
    assert len(keys) == 3
    assert info.value.attempts == 3


def test_retry_after_longer_than_allowed_is_not_slept() -> None:
    app, keys = flaky_app([503], retry_after="3600")
    with serve(app) as base, RedemptionClient(base) as client, pytest.raises(RetryAfterTooLong):
        client.redeem("t")
    assert len(keys) == 1


def test_connection_refused_is_typed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RedemptionClient(
            f"http://127.0.0.1:{port}", retry=RetryPolicy(initial_backoff=0)
        ) as client,
        pytest.raises(ConnectionRefused) as info,
    ):
        client.redeem("t")
    assert info.value.attempts == 3


def test_api_key_stays_out_of_repr() -> None:
    client = RedemptionClient("http://127.0.0.1:1", api_key="secret-app-key-123")
    assert "secret" not in repr(client)
    client.close()


# --- the shared retry engine applies to redemptions ------------------------------------


def test_in_flight_409_is_retried_with_the_same_key_and_reported_to_on_retry() -> None:
    app, keys = in_flight_then_ok(2)
    seen: list[RetryDetails] = []
    with serve(app) as base, RedemptionClient(base, on_retry=seen.append) as client:
        assert client.redeem("t", idempotency_key="key-1").id == "rdm_1"
    assert keys == ["key-1", "key-1", "key-1"]
    assert [d.attempt for d in seen] == [1, 2]
    cause = seen[0].cause
    assert isinstance(cause, IdempotencyConflict)
    assert cause.transient and cause.retryable
    assert cause.category is ErrorCategory.BUSINESS
    assert seen[0].attributes["http.response.status_code"] == 409
    assert seen[0].attributes["error.type"] == "idempotency_key_in_flight"


def test_in_flight_409_still_in_flight_after_the_last_attempt_is_raised_typed() -> None:
    app, keys = in_flight_then_ok(10)
    with (
        serve(app) as base,
        RedemptionClient(base, retry=RetryPolicy(max_attempts=2)) as client,
        pytest.raises(IdempotencyConflict) as info,
    ):
        client.redeem("t")
    assert len(keys) == 2 and info.value.attempts == 2
    assert info.value.status_code == 409 and info.value.retry_after == 0


def test_refusals_are_typed_with_full_context_and_never_retried(url) -> None:
    minted = token("bob")
    seen: list[RetryDetails] = []
    with RedemptionClient(url, on_retry=seen.append) as client:
        client.redeem(minted)
        with pytest.raises(AlreadyRedeemed) as info:
            client.redeem(minted)
    error = info.value
    assert seen == []
    assert error.attempts == 1
    assert not error.transient and not error.retryable
    assert error.category is ErrorCategory.BUSINESS
    assert error.severity is Severity.MINOR
    assert error.payload is not None and error.payload.message
    assert error.request is not None and error.request.headers["Idempotency-Key"]
    assert error.response is not None and error.response.status_code == 409
    assert "TOKEN_ALREADY_REDEEMED" in str(error)


def test_a_shared_policy_shares_its_retry_budget() -> None:
    app, keys = flaky_app([503] * 10)
    policy = RetryPolicy(budget=RetryBudget(max_tokens=1, token_ratio=0))
    with serve(app) as base, disable_backoff():
        with RedemptionClient(base, retry=policy) as first, pytest.raises(ServiceUnavailable) as a:
            first.redeem("t")
        with RedemptionClient(base, retry=policy) as other, pytest.raises(ServiceUnavailable) as b:
            other.redeem("t")
        assert other.retry is policy
    # The one banked retry went to the first client; the second fails fast.
    assert (a.value.attempts, b.value.attempts) == (2, 1)
    assert len(keys) == 3
    assert policy.budget is not None and policy.budget.tokens == 0


def test_each_default_client_has_its_own_budget() -> None:
    one, two = RedemptionClient("http://127.0.0.1:1"), RedemptionClient("http://127.0.0.1:1")
    assert one.retry is not None and two.retry is not None
    assert one.retry.budget is not two.retry.budget
    one.close()
    two.close()


def test_disable_backoff_skips_the_waits_on_retry_still_reports(monkeypatch) -> None:
    def no_sleeping(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s with backoff disabled")

    # Only the retry engine's clock module is replaced: a real sleep would fail the test.
    monkeypatch.setattr(_retry, "time", SimpleNamespace(sleep=no_sleeping))
    app, keys = flaky_app([503, 429], retry_after="20")
    seen: list[RetryDetails] = []
    with (
        serve(app) as base,
        RedemptionClient(base, on_retry=seen.append) as client,
        disable_backoff(),
    ):
        assert client.redeem("t").id == "rdm_1"
    assert [d.wait for d in seen] == [20.0, 20.0]
    assert len(keys) == 3 and len(set(keys)) == 1
    # With backoff back on, the same engine sleeps what Retry-After asks.
    app, keys = flaky_app([503], retry_after="20")
    with (
        serve(app) as base,
        RedemptionClient(base) as client,
        pytest.raises(AssertionError, match="slept 20"),
    ):
        client.redeem("t")


def test_retry_after_past_the_deadline_is_not_slept() -> None:
    app, keys = flaky_app([503], retry_after="5")
    with (
        serve(app) as base,
        RedemptionClient(base, retry=RetryPolicy(deadline=1.0)) as client,
        pytest.raises(RetryAfterTooLong) as info,
    ):
        client.redeem("t")
    assert len(keys) == 1
    assert info.value.requested_wait == 5


def test_retry_none_makes_one_attempt() -> None:
    app, keys = flaky_app([503])
    with (
        serve(app) as base,
        RedemptionClient(base, retry=None) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.redeem("t")
    assert len(keys) == 1


def test_a_success_body_that_is_not_a_redemption_is_invalid_response_body() -> None:
    async def redeem(request: Request) -> Response:
        return Response(b'{"id": 1}', status_code=201, media_type="application/json")

    app = Starlette(routes=[Route("/v1/redemptions", redeem, methods=["POST"])])
    with (
        serve(app) as base,
        RedemptionClient(base) as client,
        pytest.raises(InvalidResponseBody) as info,
    ):
        client.redeem("t")
    assert info.value.attempts == 1


def test_a_configured_http_client_is_used_and_not_closed(url) -> None:
    import httpx

    with httpx.Client(timeout=5) as http:
        with RedemptionClient(url, http_client=http) as client:
            assert client.redeem(token("hc")).subject == "hc"
        assert not http.is_closed


def test_bad_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        RedemptionClient("ftp://x")
    with pytest.raises(ConfigurationError):
        RedemptionClient("http://x", retry=3)  # type: ignore[arg-type]
    with RedemptionClient("http://127.0.0.1:1") as client:
        with pytest.raises(ConfigurationError):
            client.redeem("")
        with pytest.raises(ConfigurationError):
            client.redeem("t", idempotency_key="é")


async def test_async_client_retries_through_the_engine() -> None:
    app, keys = flaky_app([503, 502])
    seen: list[int] = []

    async def on_retry(details: RetryDetails) -> None:
        seen.append(details.attempt)

    with serve(app) as base, disable_backoff():
        async with AsyncRedemptionClient(base, on_retry=on_retry) as client:
            assert (await client.redeem("t")).id == "rdm_1"
    assert seen == [1, 2]
    assert len(keys) == 3 and len(set(keys)) == 1


async def test_async_in_flight_then_typed_refusal(url) -> None:
    app, keys = in_flight_then_ok(1)
    with serve(app) as base, disable_backoff():
        async with AsyncRedemptionClient(base) as client:
            assert (await client.redeem("t")).id == "rdm_1"
    assert len(keys) == 2 and len(set(keys)) == 1  # the 409, then the redemption
    async with AsyncRedemptionClient(url) as client:
        with pytest.raises(TokenRejected) as info:
            await client.redeem("not.a.token")
    assert info.value.category is ErrorCategory.BUSINESS and info.value.attempts == 1
