"""GET /.well-known/jwks.json, /healthz, /livez, /readyz, /metrics and /openapi.yaml.

``/livez`` answers 200 while the process serves HTTP (no database call: a liveness probe
must not restart a healthy process because its database is slow). ``/readyz`` answers 200
only when the database answers and its schema is the one this server expects, else 503
with the reason — what a load balancer or Kubernetes readiness probe wants. ``/metrics``
is the Prometheus text exposition (admin key as Bearer: budgets are business data).

The OpenAPI document ships inside the package (server_stub/openapi.yaml) so an
installed server can serve it; docs/openapi.yaml is kept identical (a test checks).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server_stub.store import LATEST_VERSION

from .._state import ServerState, state_of
from ..web._metrics import CONTENT_TYPE_LATEST
from ..web._problems import HttpProblem, json_response

__all__ = ["meta_routes", "openapi_text"]


def openapi_text() -> bytes:
    return resources.files("server_stub").joinpath("openapi.yaml").read_bytes()


def meta_routes(state: ServerState) -> list[BaseRoute]:
    spec = openapi_text()

    async def jwks(request: Request) -> Response:
        return Response(
            state_of(request).jwks_body,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def healthz(request: Request) -> Response:
        current = state_of(request)
        version = await current.db(current.store.schema_version)
        return json_response(
            {"status": "ok", "backend": current.store.backend, "schema_version": version}
        )

    async def livez(request: Request) -> Response:
        return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(request: Request) -> Response:
        current = state_of(request)
        try:
            version = await current.db(current.store.schema_version)
        except HttpProblem as problem:
            return json_response(
                {"status": "unavailable", "reason": problem.code},
                status=503,
                headers={"Cache-Control": "no-store", "Retry-After": "5"},
            )
        if version != LATEST_VERSION:
            return json_response(
                {
                    "status": "unavailable",
                    "reason": "SCHEMA_NOT_CURRENT",
                    "schema_version": version,
                    "expected": LATEST_VERSION,
                },
                status=503,
                headers={"Cache-Control": "no-store", "Retry-After": "5"},
            )
        return json_response(
            {"status": "ready", "schema_version": version}, headers={"Cache-Control": "no-store"}
        )

    async def metrics(request: Request) -> Response:
        current = state_of(request)
        current.keys.require_admin(request)
        try:
            budgets = await current.db(current.store.budgets)
        except HttpProblem:
            budgets = None  # still expose the counters when the database is down
        if budgets is not None:
            current.metrics.set_budgets(
                (budget.kind, budget.campaign, budget.unit, budget.remaining) for budget in budgets
            )
        return Response(
            current.metrics.render(),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    async def openapi(request: Request) -> Response:
        return Response(
            spec, media_type="application/yaml", headers={"Cache-Control": "public, max-age=300"}
        )

    return [
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.yaml", openapi, methods=["GET"]),
    ]
