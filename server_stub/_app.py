"""`create_app(settings)`: the Starlette application of the redemption server.

Routes come in groups, each a function ``(ServerState) -> list[BaseRoute]``; pass
``route_groups=(*DEFAULT_ROUTE_GROUPS, my_group)`` to add more (the alert pages do).
The store is opened (and migrated) when the app starts and closed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from errdiscount_sdk import SigningKey
from errdiscount_sdk.wire import IDEMPOTENCY_KEY_HEADER
from server_stub.store import StoreError

from ._settings import Settings
from ._state import ServerState
from .frontend._routes import frontend_routes
from .routes._admin import admin_routes
from .routes._detection import detection_routes
from .routes._events import events_routes
from .routes._ledger import ledger_routes
from .routes._meta import meta_routes
from .routes._outbox import outbox_routes
from .routes._redeem import redemption_routes
from .routes._report_compensation import compensation_report_routes
from .routes._reports import report_routes
from .routes._sessions import session_routes
from .routes._traces import traces_routes
from .web._internal_errors import InternalErrors
from .web._metrics import MetricsMiddleware
from .web._problems import register_handlers
from .web._request_id import RequestIdMiddleware
from .web._security import CorsPolicy, SecurityHeaders
from .workers._detector import AutoCompensate, DetectorWorker
from .workers._retention import prune_forever

__all__ = ["CORS_PATHS", "DEFAULT_ROUTE_GROUPS", "RouteGroup", "create_app"]

log = logging.getLogger("server_stub")

RouteGroup = Callable[[ServerState], list[BaseRoute]]

DEFAULT_ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    meta_routes,
    redemption_routes,
    admin_routes,
    ledger_routes,
    events_routes,
    traces_routes,
    outbox_routes,
    session_routes,
    detection_routes,
    report_routes,
    compensation_report_routes,
    frontend_routes,
)
#: front-end facing paths: CORS applies here (and only here)
CORS_PATHS: tuple[str, ...] = ("/v1/redemptions", "/v1/alerts", "/.well-known/jwks.json")
#: the session-authenticated paths: CORS with Authorization (the session token) allowed
SESSION_CORS_PATHS: tuple[str, ...] = ("/v1/me/",)
SESSION_CORS_HEADERS: tuple[str, ...] = (
    "Content-Type",
    IDEMPOTENCY_KEY_HEADER,
    "Accept-Language",
    "Authorization",
)
#: how often expired idempotency records are deleted
PURGE_INTERVAL_SECONDS = 600.0


async def _purge_forever(state: ServerState) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
        try:
            await state.db(state.store.purge_idempotency)
        except Exception:  # a failed purge is retried next round; never kill the app
            log.warning("purging expired idempotency keys failed", exc_info=True)


def _log_detector_mode(mode: AutoCompensate, interval: float) -> None:
    every = f"every {interval:g} s" if interval > 0 else "only on POST /v1/detector/run"
    if mode is AutoCompensate.DRY_RUN:
        log.warning(
            "automatic compensation is in DRY-RUN: the detector runs %s and records its"
            " decisions (GET /v1/auto-compensations?status=dry_run); nothing is issued."
            " Start with --auto-compensate on to issue vouchers.",
            every,
        )
    elif mode is AutoCompensate.ON:
        log.info("automatic compensation is ON: the detector runs %s and issues vouchers", every)
    else:
        log.info("automatic compensation is OFF: the detector runs %s, detection only", every)


def create_app(
    settings: Settings,
    *,
    signing_key: SigningKey | None = None,
    route_groups: Sequence[RouteGroup] = DEFAULT_ROUTE_GROUPS,
    cors_paths: Iterable[str] = CORS_PATHS,
    token_clock: Callable[[], float] | None = None,
) -> Starlette:
    """Build the app; nothing touches the database until it starts (lifespan).

    Args:
        settings: the configuration.
        signing_key: use this key instead of ``settings.signing_key`` (tests, embedding).
        route_groups: the route groups, in matching order.
        cors_paths: path prefixes where the CORS allow-list applies.
        token_clock: the Unix time redeemed tokens are checked against (tests).

    Raises:
        ConfigurationError: unusable settings (`KeyLoadError`, `PolicyError`).
    """
    state = ServerState(settings, signing_key=signing_key, token_clock=token_clock)
    routes = [route for group in route_groups for route in group(state)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await state.start()
        except StoreError:
            log.error("cannot open the database", exc_info=True)
            raise
        tasks = [
            asyncio.create_task(_purge_forever(state)),
            asyncio.create_task(
                prune_forever(
                    state.store,
                    event_retention_days=settings.event_retention_days,
                    rollup_retention_days=settings.rollup_retention_days,
                    outbox_retention_days=settings.outbox_retention_days,
                    daily_rollup_retention_days=settings.daily_rollup_retention_days,
                )
            ),
        ]
        if settings.dispatch:
            tasks.append(asyncio.create_task(state.dispatcher.run_forever()))
        detector = DetectorWorker(
            state.store,
            state.policy,
            state.issuer,
            state.gate,
            mode=AutoCompensate(settings.auto_compensate),
            public_base=settings.public_url or "http://localhost",
        )
        app.state.detector = detector
        _log_detector_mode(detector.mode, settings.detector_interval)
        if settings.detector_interval > 0:
            tasks.append(asyncio.create_task(detector.run_forever(settings.detector_interval)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.dispatcher.close()
            await state.stop()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, metrics=state.metrics),
            Middleware(SecurityHeaders),
            Middleware(CorsPolicy, origins=settings.cors_origins, path_prefixes=tuple(cors_paths)),
            Middleware(
                CorsPolicy,
                origins=settings.cors_origins,
                path_prefixes=SESSION_CORS_PATHS,
                request_headers=SESSION_CORS_HEADERS,
            ),
            # Innermost: its 500 still gets the security and CORS headers.
            Middleware(InternalErrors),
        ],
        exception_handlers=register_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.server = state
    return app
