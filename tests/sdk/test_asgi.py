"""The ASGI middleware with the real frameworks: Starlette and FastAPI (httpx ASGITransport),
and over real uvicorn servers — including vouchers issued by a real errdiscount-server."""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from errdiscount_sdk import (
    CompensationPolicy,
    ConfigurationError,
    ProviderError,
    TokenVerifier,
)
from errdiscount_sdk.asgi import ErrDiscountMiddleware
from tests.support.provider_support import RecordingSink
from tests.support.server import serve
from tests.support.server_support import ADMIN_KEY, AUDIENCE, ISSUER, running
from tests.support.token_helpers import AUDIENCE as TOKEN_AUDIENCE
from tests.support.token_helpers import ISSUER as TOKEN_ISSUER
from tests.support.token_helpers import issuer_for

PAY = ProviderError(
    "PAY_001",
    "Insufficient balance.",
    suggestion="Top up your card.",
    status=402,
    messages={"zh-CN": "银行卡余额不足。"},
)


def _user(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-user-id":
            return str(value.decode())
    return None


def starlette_app(sink: RecordingSink, **options: Any) -> Starlette:
    async def pay(request: Request) -> JSONResponse:
        if request.path_params["id"] == 0:
            return JSONResponse({"paid": True})
        raise PAY

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("db password=hunter2")

    app = Starlette(
        routes=[
            Route("/api/pay/{id:int}", pay, methods=["POST"]),
            Route("/boom", boom),
        ]
    )
    app.add_middleware(ErrDiscountMiddleware, reporter=sink, user_id=_user, **options)
    return app


def fastapi_app(sink: RecordingSink, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/api/orders/{order_id}/pay")
    async def pay(order_id: int, amount: float) -> dict[str, Any]:
        if amount > 100:
            raise PAY
        if amount < 0:
            raise ValueError("negative amount")
        return {"order": order_id, "paid": amount}

    @app.get("/api/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404, detail="no such thing")

    app.add_middleware(ErrDiscountMiddleware, reporter=sink, user_id=_user, **options)
    return app


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_starlette_provider_error_answers_the_seed_payload_with_a_token() -> None:
    sink = RecordingSink()
    issuer = issuer_for()
    app = starlette_app(sink, issuer=issuer)
    async with _client(app) as client:
        response = await client.post(
            "/api/pay/42?password=hunter2&page=2", headers={"x-user-id": "alice"}
        )
    assert response.status_code == 402
    body = response.json()
    assert body["error_code"] == "PAY_001" and body["category"] == "business"
    assert body["alert_url"] is None  # signed locally: nothing records it, so no alert page
    claims = TokenVerifier(issuer.jwks(), issuer=TOKEN_ISSUER, audience=TOKEN_AUDIENCE).verify(
        body["discount_token"], subject="alice"
    )
    assert claims.error.code == "PAY_001" and claims.compensation.kind == "coupon"
    [event] = sink.events
    assert event["endpoint"] == "POST /api/pay/{id}"
    assert (event["outcome"], event["status"], event["error_code"]) == ("error", 402, "PAY_001")
    assert (event["category"], event["severity"], event["user_id"]) == (
        "business",
        "minor",
        "alice",
    )
    # The shared Redactor's defaults: sensitive keys filtered, other values type + length.
    assert event["params"] == {"password": "[Filtered]", "page": "<str:1>"}
    assert "hunter2" not in repr(event)


async def test_starlette_success_is_recorded_as_ok() -> None:
    sink = RecordingSink()
    async with _client(starlette_app(sink)) as client:
        response = await client.post("/api/pay/0", headers={"x-user-id": "bob"})
    assert response.json() == {"paid": True}
    [event] = sink.events
    assert (event["outcome"], event["status"], event["endpoint"]) == (
        "ok",
        200,
        "POST /api/pay/{id}",
    )
    assert event["user_id"] == "bob" and event["error_code"] is None


async def test_no_issuer_no_token() -> None:
    async with _client(starlette_app(RecordingSink())) as client:
        body = (await client.post("/api/pay/1", headers={"x-user-id": "alice"})).json()
    assert body["discount_token"] is None and body["error_code"] == "PAY_001"


async def test_unhandled_exception_is_a_500_without_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk.provider"):
        async with _client(starlette_app(sink)) as client:
            response = await client.get("/boom", headers={"accept": "application/problem+json"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert "hunter2" in caplog.text
    assert sink.events[0]["error_code"] == "INTERNAL_ERROR" and sink.events[0]["status"] == 500


async def test_fastapi_routes_mappings_and_its_own_errors() -> None:
    sink = RecordingSink()
    app = fastapi_app(
        sink,
        errors={ValueError: lambda exc: ProviderError("BAD_AMOUNT", "The amount is invalid.")},
    )
    async with _client(app) as client:
        paid = await client.post("/api/orders/7/pay?amount=5", headers={"x-user-id": "carol"})
        refused = await client.post(
            "/api/orders/7/pay?amount=500", headers={"accept-language": "zh-CN"}
        )
        mapped = await client.post("/api/orders/7/pay?amount=-1")
        missing = await client.get("/api/missing")
        invalid = await client.post("/api/orders/seven/pay?amount=1")
    assert paid.json() == {"order": 7, "paid": 5.0}
    assert refused.status_code == 402 and refused.json()["message"] == "银行卡余额不足。"
    assert mapped.status_code == 400 and mapped.json()["error_code"] == "BAD_AMOUNT"
    # FastAPI's own answers stay FastAPI's; the middleware only records them.
    assert missing.status_code == 404 and missing.json() == {"detail": "no such thing"}
    assert invalid.status_code == 422 and "detail" in invalid.json()
    endpoints = [(e["endpoint"], e["status"], e["outcome"]) for e in sink.events]
    assert endpoints == [
        ("POST /api/orders/{order_id}/pay", 200, "ok"),
        ("POST /api/orders/{order_id}/pay", 402, "error"),
        ("POST /api/orders/{order_id}/pay", 400, "error"),
        ("GET /api/missing", 404, "error"),
        ("POST /api/orders/{order_id}/pay", 422, "error"),
    ]
    assert sink.events[3]["category"] == "protocol" and sink.events[3]["error_code"] is None


async def test_unrouted_paths_are_normalised() -> None:
    sink = RecordingSink()
    async with _client(fastapi_app(sink)) as client:
        response = await client.get("/api/users/12345/secret-thing")
    assert response.status_code == 404
    assert sink.events[0]["endpoint"] == "GET /api/users/{id}/secret-thing"


async def test_a_broken_sink_or_callable_never_breaks_the_request() -> None:
    class Broken:
        def record(self, event: Mapping[str, Any]) -> None:
            raise RuntimeError("collector down")

    def bad_user(scope: Mapping[str, Any]) -> str:
        raise KeyError("no session")

    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fail")
    async def fail() -> None:
        raise PAY

    app.add_middleware(
        ErrDiscountMiddleware, reporter=Broken(), user_id=bad_user, issuer=issuer_for()
    )
    async with _client(app) as client:
        assert (await client.get("/ok")).json() == {"ok": True}
        failed = await client.get("/fail")
    assert failed.status_code == 402 and failed.json()["discount_token"] is None  # no user


async def test_app_supplied_platform_versions() -> None:
    sink = RecordingSink()

    def header(name: bytes) -> Any:
        return lambda scope: dict(scope["headers"]).get(name, b"").decode() or None

    app = starlette_app(
        sink,
        platform=header(b"x-platform"),
        os_version=header(b"x-os-version"),
        app_version=header(b"x-app-version"),
    )
    async with _client(app) as client:
        await client.post(
            "/api/pay/0",
            headers={"x-platform": "ios", "x-os-version": "17.2", "x-app-version": "3.1.0"},
        )
        await client.post("/api/pay/0")
    first, second = sink.events
    assert (first["platform"], first["os_version"], first["app_version"]) == (
        "ios",
        "17.2",
        "3.1.0",
    )
    assert (second["platform"], second["os_version"], second["app_version"]) == (None, None, None)


async def test_an_exception_after_the_response_started_is_reraised() -> None:
    sink = RecordingSink()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("broke mid-stream")

    app = ErrDiscountMiddleware(streaming, reporter=sink)
    async with _client(app) as client:
        with pytest.raises(RuntimeError, match="mid-stream"):
            await client.get("/stream")
    assert sink.events[0]["outcome"] == "error" and sink.events[0]["status"] is None


async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    sink = RecordingSink()
    middleware = ErrDiscountMiddleware(app, reporter=sink)
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"] and sink.events == []


@pytest.mark.parametrize(
    "options",
    [
        {"user_id": "alice"},
        {"reporter": object()},
        {"issuer": "not an issuer"},
        {"redemption_server": "https://redeem.example.com"},
        {"admin_key": "k"},
        {"issuer": None, "redemption_server": "ftp://x", "admin_key": "k"},
        {"policy": {"codes": {}}},
        {"problem_type_base": "http://insecure/"},
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ErrDiscountMiddleware(Starlette(), **options)


def test_issuer_and_server_are_exclusive() -> None:
    with pytest.raises(ConfigurationError, match="either"):
        ErrDiscountMiddleware(
            Starlette(),
            issuer=issuer_for(),
            redemption_server="https://redeem.example.com",
            admin_key="k",
        )


def test_over_real_uvicorn_with_vouchers_issued_by_the_redemption_server(tmp_path: Path) -> None:
    """The server issues and records the voucher, so the answer carries its alert page."""
    sink = RecordingSink()
    with running(tmp_path) as server_url:
        app = fastapi_app(
            sink,
            redemption_server=server_url,
            admin_key=ADMIN_KEY,
            policy=CompensationPolicy.default(),
        )
        with serve(app) as api_url, httpx.Client(base_url=api_url) as client:
            response = client.post(
                "/api/orders/9/pay?amount=500",
                headers={"x-user-id": "dave", "accept-language": "zh-CN"},
            )
            assert response.status_code == 402
            body = response.json()
            assert body["alert_url"].startswith(server_url + "/v1/alerts/")
            jwks = httpx.get(server_url + "/.well-known/jwks.json").json()
            claims = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE).verify(
                body["discount_token"], subject="dave"
            )
            assert claims.error.code == "PAY_001" and claims.compensation.kind == "coupon"
            # The provider's texts went to the server, per language, for the alert popup.
            english = httpx.get(body["alert_url"], headers={"accept": "application/json"})
            assert english.status_code == 200 and "Insufficient balance." in english.text
            chinese = httpx.get(
                body["alert_url"],
                headers={"accept": "application/json", "accept-language": "zh-CN"},
            )
            assert "银行卡余额不足。" in chinese.text
    assert sink.events[0]["endpoint"] == "POST /api/orders/{order_id}/pay"


def test_server_vouchers_fail_soft_when_the_server_is_down(tmp_path: Path) -> None:
    sink = RecordingSink()
    with running(tmp_path) as server_url:
        pass  # started and stopped: nothing listens there any more
    app = fastapi_app(sink, redemption_server=server_url, admin_key=ADMIN_KEY)
    with serve(app) as api_url:
        response = httpx.post(api_url + "/api/orders/9/pay?amount=500", headers={"x-user-id": "e"})
    assert response.status_code == 402
    assert response.json()["discount_token"] is None and response.json()["alert_url"] is None
