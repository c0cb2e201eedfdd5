"""A Starlette fault-injection app for client tests, served for real by `tests.support.server.serve`.

Every request is recorded in `FaultApp.hits` (method, path, Idempotency-Key), so
tests assert exact attempt counts server-side.

Endpoints:
- ``/ok``: 200 JSON ``{"ok": true}``; ``/echo``: 200 JSON of method, query and body.
- ``/flaky/{key}?failures=k&status=503``: fails k times (per key), then 200 JSON.
- ``/unavailable?after=...``: always 503 with ``Retry-After: after`` (seconds or date).
- ``/slow``: never answers until the app is released (read-timeout tests).
- ``/business``: 402 with the seed's flat payload, a discount token and an alert URL;
  ``?alert=...`` overrides the alert URL.
- ``/bad-gateway``: 502 with an HTML page (a proxy's, not JSON).
- ``/malformed-json``: 200 declaring JSON, body cut short.
- ``/status/{code}``: that status, empty body.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.server import serve

SEED_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"
SEED_ALERT_URL = "https://status.example.com/incidents/42"


@attrs.frozen
class Hit:
    method: str
    path: str
    idempotency_key: str | None


class FaultApp:
    """The ASGI app plus what it saw. One instance per test."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/ok", self.ok, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
                Route("/echo", self.echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
                Route("/flaky/{key}", self.flaky, methods=["GET", "POST", "PATCH", "PUT"]),
                Route("/unavailable", self.unavailable, methods=["GET", "POST"]),
                Route("/slow", self.slow, methods=["GET", "POST"]),
                Route("/business", self.business, methods=["GET", "POST"]),
                Route("/bad-gateway", self.bad_gateway),
                Route("/malformed-json", self.malformed_json),
                Route("/status/{code:int}", self.status, methods=["GET", "POST"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            key = headers.get(b"idempotency-key")
            with self._lock:
                self.hits.append(Hit(scope["method"], scope["path"], key.decode() if key else None))
        await self.app(scope, receive, send)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for hit in self.hits if hit.path == path)

    def keys(self, path: str) -> list[str | None]:
        with self._lock:
            return [hit.idempotency_key for hit in self.hits if hit.path == path]

    def release(self) -> None:
        """Let every pending ``/slow`` request finish (call before the server stops)."""
        loop, event = self._loop, self._release
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def ok(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "query": dict(request.query_params),
                "body": body.decode(errors="replace"),
                "content_type": request.headers.get("content-type"),
            }
        )

    async def flaky(self, request: Request) -> Response:
        key = request.path_params["key"]
        failures = int(request.query_params.get("failures", "1"))
        status = int(request.query_params.get("status", "503"))
        with self._lock:
            self._failures[key] += 1
            seen = self._failures[key]
        if seen <= failures:
            return Response(status_code=status)
        return JSONResponse({"ok": True, "attempt": seen})

    async def unavailable(self, request: Request) -> Response:
        after = request.query_params.get("after", "1")
        return Response(status_code=503, headers={"Retry-After": after})

    async def slow(self, request: Request) -> Response:
        if self._release is None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
        await self._release.wait()
        return Response(status_code=204)

    async def business(self, request: Request) -> Response:
        return JSONResponse(
            {
                "error_code": "PAY_001",
                "message": "Your card was declined by the issuing bank.",
                "suggestion": "Try another card or contact your bank.",
                "discount_token": request.query_params.get("token", SEED_TOKEN),
                "alert_url": request.query_params.get("alert", SEED_ALERT_URL),
            },
            status_code=402,
        )

    async def bad_gateway(self, request: Request) -> Response:
        return Response(
            "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
            status_code=502,
            media_type="text/html",
        )

    async def malformed_json(self, request: Request) -> Response:
        return Response('{"items": [1, 2', status_code=200, media_type="application/json")

    async def status(self, request: Request) -> Response:
        return Response(status_code=request.path_params["code"])


@contextlib.contextmanager
def serve_faults() -> Iterator[tuple[FaultApp, str]]:
    """Serve a fresh `FaultApp` on loopback; releases ``/slow`` requests at teardown."""
    app = FaultApp()
    with serve(app) as base_url:
        try:
            yield app, base_url
        finally:
            app.release()
