"""Prometheus metrics of one app (the ``prometheus-client`` library, one registry per app).

Counters count what happened, once: a redemption is counted when its response is final
(a replay is counted as ``replayed``, not again as ``redeemed``). Names:

- ``errdiscount_redemptions_total{outcome}``: redemption answers (redeemed, replayed, refused);
- ``errdiscount_refusals_total{error_code}``: refused redemptions by code;
- ``errdiscount_budget_remaining{kind,campaign,unit}``: what a budget has left (at scrape);
- ``errdiscount_request_duration_seconds{route,method}``: latency per route template;
- ``errdiscount_requests_total{route,method,status}``: answered requests;
- ``errdiscount_store_errors_total{kind}``: failed store calls, by the 503 problem they
  became (``STORE_BUSY``, ``STORE_UNAVAILABLE``; `server_stub._state.store_errors`);
- ``errdiscount_redeem_batch_size``: redemptions (keyed or not) per group commit.

Route labels are route *templates* (``/v1/alerts/{alert_id}``), never raw paths, so a
label can neither leak a bearer id nor grow without bound; unmatched paths are
``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "MetricsMiddleware", "ServerMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServerMetrics:
    """The metrics of one app; `render` gives the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.redemptions = Counter(
            "errdiscount_redemptions",
            "Redemption answers by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "errdiscount_refusals",
            "Refused redemptions by error_code.",
            ["error_code"],
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "errdiscount_budget_remaining",
            "What a budget has left, in its unit (read at scrape time).",
            ["kind", "campaign", "unit"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "errdiscount_request_duration_seconds",
            "Request latency by route template.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "errdiscount_requests",
            "Answered requests by route template and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "errdiscount_store_errors",
            "Failed store calls, by the 503 problem code they became.",
            ["kind"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "errdiscount_redeem_batch_size",
            "Redemptions per group commit.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

    def redemption(self, outcome: str, error_code: str | None = None) -> None:
        self.redemptions.labels(outcome).inc()
        if error_code is not None:
            self.refusals.labels(error_code).inc()

    def set_budgets(self, budgets: Iterable[tuple[str, str, str, float]]) -> None:
        """Replace the budget gauges with ``(kind, campaign, unit, remaining)`` rows."""
        self.budget_remaining.clear()
        for kind, campaign, unit, remaining in budgets:
            self.budget_remaining.labels(kind, campaign, unit).set(remaining)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Plain ASGI middleware timing every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.request_duration.labels(template, method).observe(
                time.perf_counter() - started
            )
            self.metrics.requests.labels(template, method, str(status)).inc()
