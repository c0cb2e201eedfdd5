"""`ErrDiscountWSGIMiddleware`: the provider middleware as WSGI (Flask, any WSGI app).

Around a WSGI app, it answers any exception the app raises with `Responder`'s error
answer and records one event per request when the server closes the response (after
the last byte). Frameworks that turn exceptions into their own 500 pages before WSGI
sees them need a hook inside: `ErrDiscountWSGIMiddleware.for_flask` installs one in a
Flask app; Django has `errdiscount_sdk.django`.

The hook talks to the middleware through the WSGI environ (a contract any framework
can follow): ``errdiscount.route`` (the route template), ``errdiscount.answer`` (the
`ErrorAnswer` it sent) and ``errdiscount.user_id`` (the user it answered for).

The callables (``user_id``, ``segment``, ...) receive the WSGI ``environ``. Under Flask
they run inside the request context, so ``flask.request`` and ``flask.g`` work there.
"""

from __future__ import annotations

import http
import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .core import MiddlewareCore, RequestClock
from .events import normalise_path, template_of
from .responder import ErrorAnswer

__all__ = [
    "ANSWER_KEY",
    "ROUTE_KEY",
    "USER_KEY",
    "ErrDiscountWSGIMiddleware",
]

ROUTE_KEY = "errdiscount.route"
ANSWER_KEY = "errdiscount.answer"
USER_KEY = "errdiscount.user_id"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


class _Closing:
    """The app's body iterable, with ``on_close`` run once after the server closes it."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class ErrDiscountWSGIMiddleware:
    """WSGI middleware: errors → the seed payload (or problem+json), one event per request.

    Args:
        app: the WSGI app to wrap.
        **options: see `MiddlewareCore.build` (the same options as the ASGI middleware).

    Raises:
        ConfigurationError: bad or conflicting options.
    """

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self.core: MiddlewareCore[Environ] = MiddlewareCore.build(**options)

    @classmethod
    def for_flask(cls, flask_app: Any, **options: Any) -> ErrDiscountWSGIMiddleware:
        """Install into a Flask app: wraps ``flask_app.wsgi_app`` and adds the hooks.

        An error handler for every exception answers `ProviderError`, mapped and
        unhandled exceptions (Flask's own `HTTPException` answers — 404, 405 — are left
        to Flask unless ``errors`` maps them); an ``after_request`` hook notes the route
        template (``request.url_rule.rule``) and the user. Returns the middleware.
        """
        flask = importlib.import_module("flask")
        http_exception = importlib.import_module("werkzeug.exceptions").HTTPException
        middleware = cls(flask_app.wsgi_app, **options)

        def note(environ: Environ) -> None:
            rule = getattr(flask.request, "url_rule", None)
            if rule is not None and ROUTE_KEY not in environ:
                environ[ROUTE_KEY] = template_of(str(rule.rule))
            if USER_KEY not in environ:
                environ[USER_KEY] = middleware.core.ask(middleware.core.user_id, environ)

        def on_error(exc: BaseException) -> Any:
            if (
                isinstance(exc, http_exception)
                and middleware.core.responder.errors.resolve(exc) is None
            ):
                return exc  # Flask renders its own HTTP errors
            environ = flask.request.environ
            note(environ)
            answer = middleware.answer(environ, exc)
            environ[ANSWER_KEY] = answer
            return flask_app.response_class(
                answer.body, status=answer.status, headers=list(answer.headers)
            )

        def after(response: Any) -> Any:
            note(flask.request.environ)
            return response

        flask_app.register_error_handler(Exception, on_error)
        flask_app.after_request(after)
        flask_app.wsgi_app = middleware
        return middleware

    def answer(self, environ: Environ, exc: BaseException) -> ErrorAnswer:
        """The error answer for ``exc`` in this request, with a voucher when compensated."""
        core = self.core
        user = environ.get(USER_KEY) or core.ask(core.user_id, environ)
        plan = core.responder.plan(
            exc,
            accept=environ.get("HTTP_ACCEPT"),
            accept_language=environ.get("HTTP_ACCEPT_LANGUAGE"),
            user_id=user,
            segment=core.ask(core.segment, environ),
        )
        voucher = None
        if plan.voucher_request is not None and core.vouchers is not None:
            voucher = core.vouchers.issue(plan.voucher_request)
        return core.responder.render(plan, voucher)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        clock = RequestClock.start()
        status: list[int | None] = [None]

        def watch(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                status[0] = int(line.split(" ", 1)[0])
            except ValueError:
                status[0] = None
            if exc_info is not None:
                return start_response(line, headers, exc_info)
            return start_response(line, headers)

        def record() -> None:
            self._record(environ, clock, status[0])

        try:
            body = self.app(environ, watch)
        except Exception as exc:
            answer = self.answer(environ, exc)
            environ[ANSWER_KEY] = answer
            headers = [*answer.headers, ("content-length", str(len(answer.body)))]
            start_response(_status_line(answer.status), headers, sys.exc_info())
            status[0] = answer.status
            return _Closing([answer.body], record)
        return _Closing(body, record)

    def _record(self, environ: Environ, clock: RequestClock, status: int | None) -> None:
        core = self.core
        if core.reporter is None:
            return
        answer = environ.get(ANSWER_KEY)
        route = environ.get(ROUTE_KEY)
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "/"))
        core.event(
            environ,
            clock=clock,
            method=str(environ.get("REQUEST_METHOD", "GET")),
            endpoint_path=route if isinstance(route, str) else normalise_path(path),
            status=status,
            query=str(environ.get("QUERY_STRING", "")),
            user_id=environ[USER_KEY] if USER_KEY in environ else core.ask(core.user_id, environ),
            answer=answer if isinstance(answer, ErrorAnswer) else None,
        )
