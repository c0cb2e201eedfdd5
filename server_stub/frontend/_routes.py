"""The front-end route group of `create_app`: alerts, /static, /dashboard and (optionally) /demo."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.routing import BaseRoute

from errdiscount_sdk import Compensation

from .._state import ServerState
from ..domain._vouchers import mint_voucher
from ._alerts import alert_routes
from ._dashboard import dashboard_routes
from ._demo_pages import DEMO_MESSAGE, DEMO_SUBJECT, DEMO_SUGGESTION, Mint, demo_routes
from ._static import static_routes

__all__ = ["DEMO_COMPENSATION", "frontend_routes"]

DEMO_ERROR = ("PAY_001", "business", "minor")
#: used when the compensation policy does not compensate the demo error
DEMO_COMPENSATION = Compensation(kind="coupon", amount=5, unit="USD")
_DEMO_TTL = dt.timedelta(days=7)


def _demo_mint(state: ServerState) -> Mint:
    async def mint(request: Request) -> tuple[str, str]:
        code, category, severity = DEMO_ERROR
        decision = state.policy.decide(code, category=category, severity=severity)
        compensation = decision.compensation or DEMO_COMPENSATION
        voucher = await mint_voucher(
            state.issuer,
            state.gate,
            public_base=state.public_base(request),
            subject=DEMO_SUBJECT,
            error_code=code,
            category=category,
            severity=severity,
            compensation=compensation,
            ttl=_DEMO_TTL,
            message=DEMO_MESSAGE,
            suggestion=DEMO_SUGGESTION,
        )
        await state.db(state.store.record_issued, voucher.record)
        state.notify_events()
        return voucher.token, voucher.alert_url

    return mint


def frontend_routes(state: ServerState) -> list[BaseRoute]:
    """``GET /v1/alerts/{id}``, ``GET /static/{name}``, ``/dashboard`` and, with
    ``settings.demo``, the demo."""
    settings = state.settings
    routes: list[BaseRoute] = [
        *alert_routes(
            lambda: state.store,
            frame_ancestors=settings.frame_ancestors,
            public_url=settings.public_url,
            grant_delivery=state.grant_delivery,
        ),
        *static_routes(),
        *dashboard_routes(state),
    ]
    if settings.demo:
        routes.extend(demo_routes(_demo_mint(state), frame_ancestors=settings.frame_ancestors))
    return routes
