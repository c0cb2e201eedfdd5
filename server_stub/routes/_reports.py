"""Report API (admin key): breakdowns and time series over the event rollups
(docs/analytics.md). Parsing and the reports themselves live in `server_stub.analytics`;
this module only authenticates, turns `InvalidReportQuery` into a 400 and answers."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._state import ServerState, state_of
from ..analytics import (
    BreakdownQuery,
    InvalidReportQuery,
    TimeseriesQuery,
    breakdown,
    single_values,
    timeseries,
)
from ..web._problems import HttpProblem, json_response

__all__ = ["report_routes"]


def _admin(request: Request) -> ServerState:
    state = state_of(request)
    state.keys.require_admin(request)
    return state


def _invalid(error: InvalidReportQuery) -> HttpProblem:
    return HttpProblem(400, "INVALID_QUERY", str(error), "See docs/analytics.md.")


async def report_breakdown(request: Request) -> Response:
    state = _admin(request)
    try:
        query = BreakdownQuery.from_params(
            single_values(request.query_params.multi_items()), datetime.now(UTC)
        )
    except InvalidReportQuery as error:
        raise _invalid(error) from None
    return json_response(await state.db(breakdown, state.store, query))


async def report_timeseries(request: Request) -> Response:
    state = _admin(request)
    try:
        query = TimeseriesQuery.from_params(
            single_values(request.query_params.multi_items()), datetime.now(UTC)
        )
    except InvalidReportQuery as error:
        raise _invalid(error) from None
    return json_response(await state.db(timeseries, state.store, query))


def report_routes(state: ServerState) -> list[BaseRoute]:
    return [
        Route("/v1/reports/breakdown", report_breakdown, methods=["GET"]),
        Route("/v1/reports/timeseries", report_timeseries, methods=["GET"]),
    ]
