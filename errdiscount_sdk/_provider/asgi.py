"""`ErrDiscountMiddleware`: the provider middleware as plain ASGI (Starlette, FastAPI, any).

Added with ``app.add_middleware(ErrDiscountMiddleware, ...)`` it sits inside Starlette's
outermost error middleware, outside the router and its exception handlers. (Wrapping a
Starlette app from outside would put that error middleware inside: it answers 500 and
re-raises before this one can answer.)
An exception that reaches it before the response started becomes the error answer of
`Responder`; an exception after the response started cannot be answered any more and
is re-raised (the server closes the connection). One event per HTTP request is recorded
after the last byte is sent. Lifespan and websocket scopes pass through untouched.

The callables (``user_id``, ``segment``, ...) receive the ASGI ``scope``: by the time
they run, the router has filled in ``scope["route"]``, ``scope["path_params"]`` and
whatever inner middleware set (``scope["user"]`` of Starlette's authentication).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .core import MiddlewareCore, RequestClock
from .events import normalise_path, template_of
from .responder import ErrorAnswer

__all__ = ["ErrDiscountMiddleware", "route_template"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers") or () if key.lower() == name]
    if not values:
        return None
    return b",".join(values).decode("latin-1")


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template (mount prefix included), else the normalised path.

    Starlette and FastAPI leave the matched route in ``scope["route"]``; a `Mount` has
    grown ``root_path`` by its prefix (as matched, so it is normalised too).
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        prefix = str(scope.get("root_path") or "")
        prefix = prefix[len(root_path) :] if prefix.startswith(root_path) else ""
        return template_of(normalise_path(prefix) + path if prefix else path)
    return normalise_path(str(scope.get("path") or "/"))


class ErrDiscountMiddleware:
    """ASGI middleware: errors → the seed payload (or problem+json), one event per request.

    Args:
        app: the ASGI app to wrap.
        **options: see `MiddlewareCore.build` (``reporter``, ``user_id``, ``errors``,
            ``policy``, ``issuer``, ``redemption_server`` + ``admin_key``, ``segment``,
            ``platform``, ``os_version``, ``app_version``, ``redact``,
            ``default_language``, ``problem_type_base``, ``compensate_unhandled``).

    Raises:
        ConfigurationError: bad or conflicting options.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.core: MiddlewareCore[Scope] = MiddlewareCore.build(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        clock = RequestClock.start()
        root_path = str(scope.get("root_path") or "")
        status: int | None = None
        started = False

        async def watch(message: Message) -> None:
            nonlocal status, started
            if message.get("type") == "http.response.start":
                started, status = True, int(message.get("status", 0))
            await send(message)

        user: str | None = None
        answer: ErrorAnswer | None = None
        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                self._record(scope, clock, root_path, None, None, None)
                raise
            user = self.core.ask(self.core.user_id, scope)
            answer = await self._answer(scope, exc, user)
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [
                        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers),
                        (b"content-length", str(len(answer.body)).encode("ascii")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer.body})
            status = answer.status
        self._record(scope, clock, root_path, status, user, answer)

    async def _answer(self, scope: Scope, exc: Exception, user: str | None) -> ErrorAnswer:
        core = self.core
        plan = core.responder.plan(
            exc,
            accept=_header(scope, b"accept"),
            accept_language=_header(scope, b"accept-language"),
            user_id=user,
            segment=core.ask(core.segment, scope),
        )
        voucher = None
        if plan.voucher_request is not None and core.vouchers is not None:
            voucher = await core.vouchers.aissue(plan.voucher_request)
        return core.responder.render(plan, voucher)

    def _record(
        self,
        scope: Scope,
        clock: RequestClock,
        root_path: str,
        status: int | None,
        user: str | None,
        answer: ErrorAnswer | None,
    ) -> None:
        core = self.core
        if core.reporter is None:
            return
        core.event(
            scope,
            clock=clock,
            method=str(scope.get("method") or "GET"),
            endpoint_path=route_template(scope, root_path),
            status=status,
            query=scope.get("query_string") or b"",
            user_id=user if answer is not None else core.ask(core.user_id, scope),
            answer=answer,
        )
