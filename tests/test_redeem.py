"""RedemptionClient / AsyncRedemptionClient against a real server (and a fault-injecting one)."""

from __future__ import annotations

import socket

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
    ConnectionRefused,
    ErrorCategory,
    IdempotencyConflict,
    NotFound,
    RedemptionClient,
    RetryAfterTooLong,
    ServiceUnavailable,
    TokenRejected,
    UserCapReached,
)
from tests._server import serve
from tests._server_support import APP_KEY, admin, running, token


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

    httpx.put(f"{url}/v1/budgets/points/tight", json={"total": 1, "unit": "points"}, headers=admin())
    httpx.put(f"{url}/v1/user-caps/trial_extension", json={"max_redemptions": 0, "period_seconds": 60}, headers=admin())
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
            client.redeem(token(compensation={"kind": "trial_extension", "amount": 1, "unit": "days"}))
        with pytest.raises(IdempotencyConflict):
            client.redeem(token(), idempotency_key="same")
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


def flaky_app(statuses: list[int], retry_after: str = "0") -> tuple[Starlette, list[str | None]]:
    """Answers the given statuses in turn, then a redemption; records Idempotency-Keys."""
    keys: list[str | None] = []

    async def redeem(request: Request) -> Response:
        keys.append(request.headers.get("idempotency-key"))
        if len(keys) <= len(statuses):
            return Response(
                b'{"error_code":"STORE_BUSY","message":"busy","suggestion":"retry"}',
                status_code=statuses[len(keys) - 1],
                media_type="application/json",
                headers={"Retry-After": retry_after},
            )
        body = (
            b'{"id":"rdm_1","jti":"j","subject":"s","compensation":{"kind":"points","amount":1,'
            b'"unit":"points"},"grant":{"kind":"points","points":1},"redeemed_at":"2030-01-01T00:00:00Z"}'
        )
        return Response(body, status_code=201, media_type="application/json")

    return Starlette(routes=[Route("/v1/redemptions", redeem, methods=["POST"])]), keys


def test_retries_transient_failures_with_the_same_key() -> None:
    app, keys = flaky_app([503, 502])
    with serve(app) as base, RedemptionClient(base) as client:
        assert client.redeem("t").id == "rdm_1"
    assert len(keys) == 3
    assert keys[0] is not None and len(set(keys)) == 1


def test_gives_up_after_three_attempts() -> None:
    app, keys = flaky_app([503, 503, 503, 503])
    with serve(app) as base, RedemptionClient(base) as client, pytest.raises(ServiceUnavailable) as info:
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
    with RedemptionClient(f"http://127.0.0.1:{port}", backoff=0) as client:
        with pytest.raises(ConnectionRefused) as info:
            client.redeem("t")
    assert info.value.attempts == 3


def test_api_key_stays_out_of_repr() -> None:
    client = RedemptionClient("http://127.0.0.1:1", api_key="secret-app-key-123")
    assert "secret" not in repr(client)
    client.close()
