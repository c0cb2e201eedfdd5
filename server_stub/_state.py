"""`ServerState`: what every route needs, built once per app from `Settings`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from errdiscount_sdk import CompensationPolicy, SigningKey, TokenIssuer
from errdiscount_sdk.wire import GRANT_DELIVERED, GRANT_PENDING
from server_stub.store import (
    IdempotencyKeyLost,
    InFlight,
    KeyedOutcome,
    KeyedRedemption,
    Mismatch,
    RedeemOutcome,
    Redemption,
    RedemptionRequest,
    Replay,
    Store,
    StoreError,
    StoreInputError,
    WouldBlock,
    open_store,
)

from ._settings import Settings
from .domain._batch import RedeemBatcher
from .domain._render import redemption_response
from .domain._sessions import SessionSigner
from .domain._trust import TokenGate, load_or_create_signing_key
from .web._auth import KeyChecker
from .web._metrics import ServerMetrics
from .web._problems import HttpProblem
from .web._ratelimit import RateLimiter
from .workers._dispatcher import Dispatcher
from .workers._setup import build_dispatcher

__all__ = ["ServerState", "state_of", "store_errors", "store_unavailable"]

log = logging.getLogger("server_stub")

T = TypeVar("T")


class ServerState:
    """Keys, verifier, issuer, policy, limiters, and (once started) the store."""

    def __init__(
        self,
        settings: Settings,
        *,
        signing_key: SigningKey | None = None,
        token_clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.signing_key = signing_key or load_or_create_signing_key(settings.signing_key)
        self.gate = TokenGate(
            self.signing_key,
            issuer=settings.issuer,
            audience=settings.audience,
            trusted=settings.trusted_jwks,
            clock=token_clock,
        )
        self.policy = (
            CompensationPolicy.from_file(settings.policy)
            if settings.policy
            else CompensationPolicy.default()
        )
        self.issuer = TokenIssuer(
            self.signing_key, issuer=settings.issuer, audience=settings.audience
        )
        self.keys = KeyChecker(settings.admin_keys(), settings.named_app_keys())
        self.ip_limit = RateLimiter(
            rate_per_second=settings.rate_ip_per_minute / 60, burst=settings.rate_burst
        )
        self.subject_limit = RateLimiter(
            rate_per_second=settings.rate_subject_per_minute / 60, burst=settings.rate_burst
        )
        self.metrics = ServerMetrics()
        self._store: Store | None = None
        self._batcher = RedeemBatcher(on_batch=self.metrics.batch_size.observe)
        self.sessions = SessionSigner(self.signing_key)
        self.dispatcher: Dispatcher = build_dispatcher(settings, lambda: self.store)

    def notify_events(self) -> None:
        """An outbox event was written by this process: the dispatcher looks now."""
        self.dispatcher.wake()

    async def grant_delivery(self, redemption: Redemption) -> str:
        """``delivered`` or ``pending``: may the user be told the grant reached them?

        Delivered when a sink acknowledged the ``compensation.redeemed`` event; with
        no sink at all, only when the grant is the server's own (a coupon code, shown
        on screen); otherwise pending ("will be credited shortly").
        """
        if await self.db(self.store.grant_acknowledged, redemption.jti):
            return GRANT_DELIVERED
        has_sinks = bool(self.dispatcher.configured_sinks) or bool(
            await self.db(self.store.webhook_endpoints)
        )
        if not has_sinks and redemption.grant.coupon_code is not None:
            return GRANT_DELIVERED
        return GRANT_PENDING

    @property
    def jwks_body(self) -> bytes:
        """The published JWKS: the signing key and every other key trusted for our issuer."""
        return self.gate.jwks_body()

    async def start(self) -> None:
        """Open (and migrate) the store; called by the app's lifespan."""
        if self._store is None:
            self._store = await run_in_threadpool(
                open_store, self.settings.database, render=redemption_response
            )
            if self._store.max_connections is not None:
                # No more worker threads than connections: a thread never waits for one.
                limiter = anyio.to_thread.current_default_thread_limiter()
                limiter.total_tokens = self._store.max_connections

    async def stop(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await run_in_threadpool(store.close)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise HttpProblem(
                503, "NOT_READY", "The server is starting.", "Retry in a moment.",
                {"Retry-After": "1"},
            )  # fmt: skip
        return self._store

    def public_base(self, request: Request) -> str:
        """The base of URLs the server hands out: ``--public-url``, else the request's."""
        return (self.settings.public_url or str(request.base_url)).rstrip("/")

    async def db(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call on a worker thread; store errors become problems (`store_errors`)."""
        with store_errors(self.metrics):
            return await run_in_threadpool(call, *args, **kwargs)

    async def redeem_keyed(self, item: KeyedRedemption) -> KeyedOutcome:
        """`Store.redeem_idempotent`, group-committed with concurrent ones (`RedeemBatcher`).

        Store errors become problems (`store_errors`); IdempotencyKeyLost stays itself.
        """
        store = self.store
        with store_errors(self.metrics):
            return await self._batcher.redeem(store, item)

    async def redeem_unkeyed(self, request: RedemptionRequest) -> RedeemOutcome:
        """`Store.redeem` without a claim, in the same batches as the keyed ones.

        On PostgreSQL this is the one-call batch function rather than a transaction of
        a dozen round trips; store errors become problems (`store_errors`).
        """
        with store_errors(self.metrics):
            outcome = await self._batcher.redeem(self.store, request)
        if isinstance(outcome, Replay | InFlight | Mismatch):  # only a key can give these
            raise StoreError("an unkeyed redemption answered as a keyed one")
        return outcome


@contextlib.contextmanager
def store_errors(metrics: ServerMetrics | None = None) -> Iterator[None]:
    """The one translation of store failures into what a route raises.

    `StoreInputError` (the store checks sizes and characters; its messages name the
    field only) is 422 INVALID_BODY; `StoreError` is 503 (`store_unavailable`), logged
    and counted in ``metrics`` (``errdiscount_store_errors_total{kind}``, the code);
    `IdempotencyKeyLost` and `WouldBlock` stay themselves for the caller to handle.
    """
    try:
        yield
    except (IdempotencyKeyLost, WouldBlock):
        raise
    except StoreInputError as exc:
        raise HttpProblem(
            422, "INVALID_BODY", f"Invalid value: {exc}.", "Check the documented limits."
        ) from None
    except StoreError as exc:
        log.warning("store call failed", exc_info=exc)
        problem = store_unavailable(exc)
        if metrics is not None:
            metrics.store_errors.labels(problem.code).inc()
        raise problem from exc


def store_unavailable(exc: StoreError) -> HttpProblem:
    if exc.retryable:
        return HttpProblem(
            503,
            "STORE_BUSY",
            "The database is busy.",
            "Retry the same request (with the same Idempotency-Key).",
            {"Retry-After": "1"},
        )
    return HttpProblem(
        503,
        "STORE_UNAVAILABLE",
        "The database is unavailable.",
        "Retry later with the same Idempotency-Key; the operator has been alerted.",
        {"Retry-After": "5"},
    )


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state
