"""Collection end to end (issue 12, "Done when"): one real errdiscount-server on loopback.

- A FastAPI provider with `ErrDiscountMiddleware` (its `ErrorReporter` pointed at the
  server with an app key) and a client app using ``Client(reporter=ErrorReporter(...))``
  calling it: ``GET /v1/events`` shows client events (``source: client``) and provider
  events (``source: provider``), route templates and not raw paths, ``attempts`` after
  retries — and no secret of the request anywhere (a password and an email in the JSON
  body, a token in the query string, an Authorization header).
- The same provider traced by OpenTelemetry (the real SDK, FastAPI instrumentation and
  OTLP/HTTP exporter) into ``POST /v1/traces`` gives the same kind of events.

Every stored event is checked against the SDK's `parse_event`: what the server shows is
the contract the SDK builds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Span

from errdiscount_sdk import BusinessError, Client, ErrorReporter, ProviderError
from errdiscount_sdk.asgi import ErrDiscountMiddleware
from errdiscount_sdk.events import CallEvent, parse_event
from tests.support.server import serve
from tests.support.server_support import APP_KEY, admin, running

USER = "alice"
PASSWORD = "hunter2-Pa55word"
EMAIL = "alice.liddell@example.com"
QUERY_TOKEN = "qs-tok-5f1e2d3c"
BEARER = "bearer-sekrit-7a6b5c"
SECRETS = (PASSWORD, EMAIL, QUERY_TOKEN, BEARER)
WAIT = 10.0


def provider_app(reporter: ErrorReporter | None) -> FastAPI:
    """A payment API: large amounts are refused (402); quotes fail twice, then answer."""
    app = FastAPI()
    quote_calls: dict[int, int] = {}
    lock = threading.Lock()

    @app.post("/api/orders/{order_id}/pay")
    async def pay(order_id: int, request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("amount", 0) > 100:
            raise ProviderError("PAY_001", "Insufficient balance.", status=402)
        return {"order": order_id, "paid": True}

    @app.get("/api/quotes/{quote_id}")
    async def quote(quote_id: int) -> Response:
        with lock:
            quote_calls[quote_id] = seen = quote_calls.get(quote_id, 0) + 1
        if seen <= 2:  # a blip: the client's retries get through
            return Response(status_code=503)
        return Response(b'{"rate": 1.08}', media_type="application/json")

    app.add_middleware(
        ErrDiscountMiddleware,
        reporter=reporter,  # None: the middleware still answers, and records nothing
        user_id=lambda scope: dict(scope["headers"]).get(b"x-user-id", b"").decode() or None,
        app_version=lambda scope: "2.0.0",
    )
    return app


def call_the_provider(provider: str, reporter: ErrorReporter | None) -> None:
    """The client app: a refused payment (with secrets in it) and a quote after retries."""
    headers = {"Authorization": f"Bearer {BEARER}", "x-user-id": USER}
    with Client(base_url=provider, headers=headers, reporter=reporter) as client:
        with pytest.raises(BusinessError) as refused:
            client.post(
                "/api/orders/123/pay",
                params={"token": QUERY_TOKEN, "page": "1"},
                json={"amount": 500, "password": PASSWORD, "email": EMAIL, "currency": "EUR"},
            )
        assert refused.value.error_code == "PAY_001"
        assert client.get("/api/quotes/42").json() == {"rate": 1.08}


def stored_events(server: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server}/v1/events", params={"limit": "1000"}, headers=admin())
    assert answer.status_code == 200
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def wait_for_events(
    server: str,
    ready: Callable[[list[dict[str, Any]]], bool],
    *reporters: ErrorReporter,
) -> list[dict[str, Any]]:
    """Flush the reporters until the server shows what ``ready`` wants (or WAIT passes).

    The middleware records after the answer is sent, so a flush can run before the
    provider's last event exists: flush again rather than sleep.
    """
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while True:
            for reporter in reporters:
                reporter.flush(timeout=2.0)
            events = stored_events(server)
            if ready(events) or deadline.is_set():
                return events
            deadline.wait(0.05)
    finally:
        timer.cancel()


def by_source(events: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [event for event in events if event["source"] == source]


def assert_contract_and_no_secret(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert isinstance(parse_event(event), CallEvent), event
    text = json.dumps(events, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text
    assert "/api/orders/123" not in text and "/api/quotes/42" not in text  # no raw paths


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running(tmp_path) as url:
        yield url


def test_a_provider_and_a_client_report_to_one_server_without_secrets(server: str) -> None:
    provider_reporter = ErrorReporter(server, app_key=APP_KEY)
    client_reporter = ErrorReporter(server, app_key=APP_KEY, user_id=USER, app_version="5.1.0")
    try:
        with serve(provider_app(provider_reporter)) as provider:
            call_the_provider(provider, client_reporter)

            def complete(events: list[dict[str, Any]]) -> bool:
                provider_calls = sum(e["count"] for e in by_source(events, "provider"))
                return provider_calls == 4 and len(by_source(events, "client")) == 2

            events = wait_for_events(server, complete, client_reporter, provider_reporter)
    finally:
        provider_reporter.close()
        client_reporter.close()

    assert_contract_and_no_secret(events)
    client = {e["endpoint"]: e for e in by_source(events, "client")}
    assert set(client) == {"POST /api/orders/{id}/pay", "GET /api/quotes/{id}"}
    paid = client["POST /api/orders/{id}/pay"]
    assert (paid["outcome"], paid["status"], paid["error_code"], paid["category"]) == (
        "error",
        402,
        "PAY_001",
        "business",
    )
    assert (paid["user_id"], paid["attempts"], paid["app_version"]) == (USER, 1, "5.1.0")
    # The parameters are there, redacted: secrets filtered, other values type + length.
    assert paid["params"]["password"] == paid["params"]["email"] == "[Filtered]"
    assert paid["params"]["token"] == "[Filtered]"
    assert paid["params"]["amount"] == "<int>" and paid["params"]["currency"] == "<str:3>"
    quoted = client["GET /api/quotes/{id}"]
    assert (quoted["outcome"], quoted["status"], quoted["attempts"]) == ("ok", 200, 3)

    provided = by_source(events, "provider")
    assert {e["endpoint"] for e in provided} == {
        "POST /api/orders/{order_id}/pay",
        "GET /api/quotes/{quote_id}",
    }
    assert {e["user_id"] for e in provided} == {USER}
    refusal = next(e for e in provided if e["status"] == 402)
    assert (refusal["error_code"], refusal["outcome"], refusal["app_version"]) == (
        "PAY_001",
        "error",
        "2.0.0",
    )
    assert refusal["params"] == {"token": "[Filtered]", "page": "<str:1>"}
    blips = [e for e in provided if e["status"] == 503]
    assert sum(e["count"] for e in blips) == 2 and {e["outcome"] for e in blips} == {"error"}
    assert [e["attempts"] for e in provided] == [1] * len(provided)  # the provider sees attempts


def _user_from_header(span: Span, scope: Mapping[str, Any]) -> None:
    if span.is_recording():
        user = dict(scope.get("headers") or []).get(b"x-user-id", b"").decode()
        if user:
            span.set_attribute("user.id", user)


def test_opentelemetry_over_otlp_gives_the_same_kind_of_events(server: str) -> None:
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": "pay-api", "service.version": "2.0.0"})
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{server}/v1/traces", headers={"Authorization": f"Bearer {APP_KEY}"}, timeout=5
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = provider_app(None)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, server_request_hook=_user_from_header
    )
    try:
        with serve(app) as provider:
            call_the_provider(provider, None)

            def complete(events: list[dict[str, Any]]) -> bool:
                return len(events) == 4

            events = wait_for_events(server, complete)
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
        tracer_provider.shutdown()

    assert_contract_and_no_secret(events)
    assert {e["source"] for e in events} == {"provider"}  # SERVER spans
    assert {e["user_id"] for e in events} == {USER}
    assert {e["app_version"] for e in events} == {"2.0.0"}
    shape = sorted((e["endpoint"], e["status"], e["outcome"]) for e in events)
    assert shape == [
        ("GET /api/quotes/{quote_id}", 200, "ok"),
        ("GET /api/quotes/{quote_id}", 503, "error"),
        ("GET /api/quotes/{quote_id}", 503, "error"),
        # A 4xx of a server span is the caller's, per OpenTelemetry (no errdiscount.error_code).
        ("POST /api/orders/{order_id}/pay", 402, "ok"),
    ]
    assert all(e["otel.trace_id"] and e["otel.span_id"] for e in events)
