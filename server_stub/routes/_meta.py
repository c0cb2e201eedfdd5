"""GET /.well-known/jwks.json, GET /healthz and GET /openapi.yaml.

The OpenAPI document ships inside the package (server_stub/openapi.yaml) so an
installed server can serve it; docs/openapi.yaml is kept identical (a test checks).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._state import ServerState, state_of
from ..web._problems import json_response

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

    async def openapi(request: Request) -> Response:
        return Response(
            spec, media_type="application/yaml", headers={"Cache-Control": "public, max-age=300"}
        )

    return [
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.yaml", openapi, methods=["GET"]),
    ]
