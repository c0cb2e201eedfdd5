"""End to end over real HTTP: a FastAPI provider with `ErrDiscountMiddleware` (local
`TokenIssuer` + `CompensationPolicy`) → the SDK `Client` on the other side parses,
classifies (business / data_format / protocol) and verifies the token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from errdiscount_sdk import (
    ApiError,
    BusinessError,
    Client,
    CompensationPolicy,
    ErrorCategory,
    MalformedRequest,
    ProviderError,
    ServerError,
    Severity,
    TokenVerifier,
)
from errdiscount_sdk.asgi import ErrDiscountMiddleware
from tests.support.provider_support import RecordingSink
from tests.support.server import serve
from tests.support.token_helpers import AUDIENCE, ISSUER, issuer_for

POLICY = CompensationPolicy.from_mapping(
    {"codes": {"PAY_001": {"compensation": {"kind": "points", "amount": 300, "unit": "points"}}}}
)


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, RecordingSink]]:
    sink = RecordingSink()
    app = FastAPI()

    @app.post("/api/pay/{order_id}")
    async def pay(order_id: int, request: Request) -> dict[str, Any]:
        body = await request.body()
        if not body.startswith(b"{"):
            raise ProviderError(
                "INVALID_BODY",
                "The request body is not valid JSON.",
                status=422,
                category=ErrorCategory.DATA_FORMAT,
                compensable=False,
            )
        if order_id > 100:
            raise ProviderError(
                "PAY_001",
                "Insufficient balance.",
                suggestion="Top up your card and try again.",
                status=402,
                severity=Severity.MODERATE,
                messages={"zh-CN": "银行卡余额不足。"},
            )
        if order_id == 13:
            raise RuntimeError("ledger connection string postgres://u:pw@db")
        return {"order": order_id, "paid": True}

    app.add_middleware(
        ErrDiscountMiddleware,
        reporter=sink,
        user_id=lambda scope: dict(scope["headers"]).get(b"x-user-id", b"").decode() or None,
        issuer=issuer_for(),
        policy=POLICY,
    )
    with serve(app) as url:
        yield url, sink


def _client(url: str, **headers: str) -> Client:
    verifier = TokenVerifier(issuer_for().jwks(), issuer=ISSUER, audience=AUDIENCE)
    return Client(base_url=url, verifier=verifier, retry=None, headers=headers)


@pytest.mark.parametrize("accept", ["application/json", "application/problem+json"])
def test_business_error_is_classified_and_its_token_verifies(
    provider: tuple[str, RecordingSink], accept: str
) -> None:
    url, sink = provider
    with (
        _client(url, **{"x-user-id": "alice", "accept": accept}) as client,
        pytest.raises(BusinessError) as caught,
    ):
        client.post("/api/pay/500", json={"amount": "99.00"})
    error = caught.value
    assert error.category is ErrorCategory.BUSINESS and error.status_code == 402
    assert error.error_code == "PAY_001"
    assert error.payload is not None
    assert error.payload.message == "Insufficient balance."
    assert error.payload.suggestion == "Top up your card and try again."
    assert error.payload.category == "business"  # the stated category is a payload member
    assert error.discount is not None, error.discount_rejection
    assert error.discount.sub == "alice" and error.discount.error.code == "PAY_001"
    assert error.discount.error.severity is Severity.MODERATE
    assert (error.discount.compensation.kind, error.discount.compensation.amount) == ("points", 300)
    event = sink.wait_for(lambda e: e["user_id"] == "alice")
    assert (event["endpoint"], event["error_code"], event["status"]) == (
        "POST /api/pay/{order_id}",
        "PAY_001",
        402,
    )


def test_chinese_message_reaches_the_client(provider: tuple[str, RecordingSink]) -> None:
    url, _ = provider
    with (
        _client(url, **{"x-user-id": "bob", "accept-language": "zh-CN,zh;q=0.9"}) as client,
        pytest.raises(BusinessError) as caught,
    ):
        client.post("/api/pay/500", json={})
    assert caught.value.payload is not None
    assert caught.value.payload.message == "银行卡余额不足。"


def test_data_format_error_is_classified_and_not_compensated(
    provider: tuple[str, RecordingSink],
) -> None:
    url, _ = provider
    with (
        _client(url, **{"x-user-id": "carol"}) as client,
        pytest.raises(MalformedRequest) as caught,
    ):
        client.post("/api/pay/5", content=b"amount=99", headers={"content-type": "text/plain"})
    assert caught.value.category is ErrorCategory.DATA_FORMAT
    assert caught.value.error_code == "INVALID_BODY" and caught.value.discount is None


def test_unhandled_error_is_a_server_error_without_internals(
    provider: tuple[str, RecordingSink],
) -> None:
    url, _ = provider
    with _client(url, **{"x-user-id": "dave"}) as client, pytest.raises(ServerError) as caught:
        client.post("/api/pay/13", json={})
    error: ApiError = caught.value
    assert error.status_code == 500 and error.error_code == "INTERNAL_ERROR"
    assert error.response is not None and "pw@db" not in error.response.text
    assert error.discount is None


def test_success_passes_through(provider: tuple[str, RecordingSink]) -> None:
    url, sink = provider
    with _client(url, **{"x-user-id": "erin"}) as client:
        assert client.post("/api/pay/7", json={}).json() == {"order": 7, "paid": True}
    assert sink.wait_for(lambda e: e["user_id"] == "erin")["outcome"] == "ok"
