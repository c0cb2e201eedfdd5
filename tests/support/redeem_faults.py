"""Fault-injecting stand-ins for the redemption endpoint (served by `tests.support.server.serve`)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


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


def in_flight_then_ok(times: int) -> tuple[Starlette, list[str | None]]:
    """409 IDEMPOTENCY_KEY_IN_FLIGHT ``times`` times (as the server says it), then a redemption."""
    app, keys = flaky_app([])
    inner = app.routes[0].endpoint  # type: ignore[attr-defined]

    async def redeem(request: Request) -> Response:
        if len(keys) < times:
            keys.append(request.headers.get("idempotency-key"))
            return Response(
                b'{"error_code":"IDEMPOTENCY_KEY_IN_FLIGHT","message":"in flight",'
                b'"suggestion":"retry"}',
                status_code=409,
                media_type="application/json",
                headers={"Retry-After": "0"},
            )
        return await inner(request)

    return Starlette(routes=[Route("/v1/redemptions", redeem, methods=["POST"])]), keys
