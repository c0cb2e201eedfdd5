"""The whole loop over real HTTP: a provider that fails, the SDK client, the redemption server.

- The provider (a Starlette app on loopback) has a flaky endpoint that succeeds after
  two 503s, and a payment endpoint that refuses with PAY_001, whose body is built with
  `CompensationPolicy.error_payload` and carries a real token and an ``alert_url``.
- The SDK `Client` verifies the token with a `TokenVerifier` built from the provider's
  JWKS and checks the alert URL with an `AlertUrlPolicy`.
- The real redemption server (SQLite in tmp_path) trusts the provider's JWKS from a file;
  `RedemptionClient` redeems the token exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk import (
    AlertUrlPolicy,
    AlreadyRedeemed,
    AsyncClient,
    AsyncRedemptionClient,
    AsyncTokenVerifier,
    BusinessError,
    Client,
    CompensationPolicy,
    DiscountToken,
    ErrorCategory,
    InvalidSignature,
    RedemptionClient,
    RetryDetails,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
)
from errdiscount_sdk.testing import disable_backoff
from server_stub import Settings, create_app
from tests.support.server import serve

PROVIDER = "provider.example"
AUDIENCE = "errdiscount"
USER = "user-42"
ALERT_URL = "https://status.provider.example/incidents/42"
ADMIN_KEY = "admin-key-0123456789abcdef"


class Provider:
    """The provider's API: fails like the seed and records what it was sent."""

    def __init__(self) -> None:
        self.issuer = TokenIssuer(generate_signing_key(), issuer=PROVIDER, audience=AUDIENCE)
        self.policy = CompensationPolicy.default()
        self.flaky_keys: list[str | None] = []
        self.tokens: list[str] = []

    def jwks(self) -> dict[str, Any]:
        return self.issuer.jwks()

    async def flaky(self, request: Request) -> Response:
        self.flaky_keys.append(request.headers.get("idempotency-key"))
        if len(self.flaky_keys) <= 2:
            return JSONResponse(
                {"error_code": "UPSTREAM_BUSY", "message": "busy", "suggestion": "retry"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"ok": True, "order": "o-1"})

    async def pay(self, request: Request) -> Response:
        body = self.policy.error_payload(
            "PAY_001",
            message="The card was declined by the payment processor.",
            category="business",
            severity="moderate",
            subject=USER,
            issuer=self.issuer,
            suggestion="Use another card.",
            alert_url=ALERT_URL,
        )
        token = body["discount_token"]
        assert isinstance(token, str)
        self.tokens.append(token)
        if request.query_params.get("tamper") == "1":
            body["discount_token"] = tampered(token)
        return JSONResponse(body, status_code=402)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/orders", self.flaky, methods=["POST"]),
                Route("/v1/pay", self.pay, methods=["POST"]),
            ]
        )


def tampered(token: str) -> str:
    """The same token with one signature character changed (still canonical base64url)."""
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] != "B" else "C"
    return ".".join((head, payload, signature[:middle] + swapped + signature[middle + 1 :]))


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def loop(tmp_path: Path, provider: Provider) -> Iterator[tuple[str, str]]:
    """(provider URL, redemption server URL), both serving for real on loopback."""
    jwks_file = tmp_path / "provider-jwks.json"
    jwks_file.write_text(json.dumps(provider.jwks()))
    settings = Settings(
        database=f"sqlite:///{tmp_path}/redeem.db",
        trusted_jwks=(f"{PROVIDER}|{jwks_file}",),
        audience=AUDIENCE,
        admin_key=ADMIN_KEY,
        access_log=False,
    )
    with serve(provider.app()) as provider_url, serve(create_app(settings)) as server_url:
        yield provider_url, server_url


def ledger(server_url: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server_url}/v1/ledger",
        params={"subject": USER},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def expected_compensation(provider: Provider) -> Any:
    decision = provider.policy.decide("PAY_001", category="business", severity="moderate")
    assert decision.compensable and decision.compensation is not None
    return decision.compensation


def alert_policy() -> AlertUrlPolicy:
    return AlertUrlPolicy(allowed_hosts={"status.provider.example"})


def test_error_to_verified_discount_to_one_redemption(
    loop: tuple[str, str], provider: Provider
) -> None:
    provider_url, server_url = loop
    discounts: list[tuple[Any, BusinessError]] = []
    alerts: list[tuple[str, BusinessError]] = []
    retries: list[RetryDetails] = []
    verifier = TokenVerifier(provider.jwks(), issuer=PROVIDER, audience=AUDIENCE)
    with (
        disable_backoff(),
        Client(
            base_url=provider_url,
            verifier=verifier,
            alert_policy=alert_policy(),
            on_discount=lambda token, error: discounts.append((token, error)),
            on_alert=lambda url, error: alerts.append((url, error)),
            on_retry=retries.append,
            retry_non_idempotent=True,  # the provider honours Idempotency-Key
        ) as client,
    ):
        # 1. A flaky endpoint: two 503s, retried with one key, then the order.
        assert client.post("/v1/orders", json={"item": 1}).json() == {"ok": True, "order": "o-1"}
        assert [d.attempt for d in retries] == [1, 2]
        assert len(provider.flaky_keys) == 3 and len(set(provider.flaky_keys)) == 1
        # 2. A business error carrying a voucher and an alert URL.
        with pytest.raises(BusinessError) as info:
            client.post("/v1/pay", json={"card": "4000"})
    error = info.value
    assert error.category is ErrorCategory.BUSINESS and error.status_code == 402
    assert error.error_code == "PAY_001" and error.attempts == 1
    discount = error.discount
    assert isinstance(discount, DiscountToken)
    assert discount.sub == USER and discount.iss == PROVIDER
    assert discount.compensation == expected_compensation(provider)
    assert discount.error.code == "PAY_001"
    assert discount.raw == provider.tokens[0]
    assert error.discount_rejection is None
    assert discounts == [(discount, error)]
    assert error.alert_url == ALERT_URL and alerts == [(ALERT_URL, error)]

    # 3. Redeem the voucher at the redemption server: granted to the token's subject.
    with RedemptionClient(server_url) as redeemer:
        redemption = redeemer.redeem(discount.raw)
        assert redemption.subject == USER and redemption.jti == discount.jti
        assert redemption.compensation == discount.compensation
        assert redemption.grant.kind == discount.compensation.kind
        with pytest.raises(AlreadyRedeemed) as again:
            redeemer.redeem(discount.raw)
    assert again.value.attempts == 1
    redeemed = [e for e in ledger(server_url) if e["event"] == "redeemed"]
    assert [(e["jti"], e["redemption_id"]) for e in redeemed] == [(discount.jti, redemption.id)]


def test_a_tampered_voucher_is_not_handed_out(loop: tuple[str, str], provider: Provider) -> None:
    provider_url, server_url = loop
    discounts: list[object] = []
    verifier = TokenVerifier(provider.jwks(), issuer=PROVIDER, audience=AUDIENCE)
    with (
        Client(
            base_url=provider_url,
            verifier=verifier,
            alert_policy=alert_policy(),
            on_discount=lambda token, error: discounts.append(token),
        ) as client,
        pytest.raises(BusinessError) as info,
    ):
        client.post("/v1/pay", params={"tamper": "1"})
    error = info.value
    assert error.discount is None
    assert isinstance(error.discount_rejection, InvalidSignature)
    assert discounts == []
    assert error.payload is not None and error.payload.discount_token == tampered(
        provider.tokens[0]
    )
    # The server refuses it too, and nothing reaches the ledger.
    with RedemptionClient(server_url) as redeemer, pytest.raises(BusinessError) as refused:
        redeemer.redeem(error.payload.discount_token)
    assert refused.value.error_code == "TOKEN_BAD_SIGNATURE"
    assert ledger(server_url) == []


async def test_async_error_to_verified_discount_to_one_redemption(
    loop: tuple[str, str], provider: Provider
) -> None:
    provider_url, server_url = loop
    discounts: list[Any] = []
    alerts: list[str] = []
    retries: list[int] = []

    async def on_discount(token: Any, error: BusinessError) -> None:
        discounts.append(token)

    async def on_retry(details: RetryDetails) -> None:
        retries.append(details.attempt)

    verifier = AsyncTokenVerifier(provider.jwks(), issuer=PROVIDER, audience=AUDIENCE)
    with disable_backoff():
        async with AsyncClient(
            base_url=provider_url,
            verifier=verifier,
            alert_policy=alert_policy(),
            on_discount=on_discount,
            on_alert=lambda url, error: alerts.append(url),
            on_retry=on_retry,
            retry_non_idempotent=True,  # the provider honours Idempotency-Key
        ) as client:
            response = await client.post("/v1/orders", json={"item": 1})
            assert response.json()["ok"] is True
            with pytest.raises(BusinessError) as info:
                await client.post("/v1/pay", json={"card": "4000"})
    assert retries == [1, 2]
    discount = info.value.discount
    assert isinstance(discount, DiscountToken)
    assert discount.sub == USER and discount.compensation == expected_compensation(provider)
    assert discounts == [discount] and alerts == [ALERT_URL]
    async with AsyncRedemptionClient(server_url) as redeemer:
        redemption = await redeemer.redeem(discount.raw)
        assert redemption.subject == USER and redemption.jti == discount.jti
        with pytest.raises(AlreadyRedeemed):
            await redeemer.redeem(discount.raw)
    redeemed = [e for e in ledger(server_url) if e["event"] == "redeemed"]
    assert [e["redemption_id"] for e in redeemed] == [redemption.id]
