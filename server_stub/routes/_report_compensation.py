"""The compensation reports (admin key): ``GET /v1/reports/compensation`` (the voucher
funnel and its cost against budgets) and ``GET /v1/reports/outcomes`` (return on
compensation). The reports themselves are `server_stub.analytics.compensation` and
`.outcomes`, run on a worker thread; a bad query is 400 ``INVALID_QUERY``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server_stub.analytics import (
    CompensationQuery,
    InvalidReportQuery,
    OutcomesQuery,
    compensation,
    outcomes,
)
from server_stub.analytics._window import single_values

from .._state import ServerState
from ..web._problems import HttpProblem, json_response

__all__ = ["compensation_report_routes"]

Q = TypeVar("Q")


def _parsed(request: Request, parse: Callable[[Mapping[str, str], datetime], Q]) -> Q:
    try:
        return parse(single_values(request.query_params.multi_items()), datetime.now(UTC))
    except InvalidReportQuery as exc:
        raise HttpProblem(
            400, "INVALID_QUERY", str(exc), "See GET /openapi.yaml for /v1/reports."
        ) from None


def compensation_report_routes(state: ServerState) -> list[BaseRoute]:
    async def compensation_report(request: Request) -> Response:
        state.keys.require_admin(request)
        query = _parsed(request, CompensationQuery.from_params)
        report: dict[str, Any] = await state.db(compensation, state.store, query)
        return json_response(report)

    async def outcomes_report(request: Request) -> Response:
        state.keys.require_admin(request)
        query = _parsed(request, OutcomesQuery.from_params)
        report: dict[str, Any] = await state.db(outcomes, state.store, query)
        return json_response(report)

    return [
        Route("/v1/reports/compensation", compensation_report, methods=["GET"]),
        Route("/v1/reports/outcomes", outcomes_report, methods=["GET"]),
    ]
