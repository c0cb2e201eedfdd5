"""Error responses: one payload shape for every failure, and the handlers that enforce it.

Every error body is ``{"error_code", "message", "suggestion"}`` (docs/openapi.yaml,
``Error``). Handlers raise `HttpProblem`; anything else that escapes a handler becomes
a generic 500 (`internal_error`, sent by `InternalErrors`) whose traceback goes to the
server log only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

__all__ = ["HttpProblem", "error_response", "json_response", "register_handlers"]


JSON = "application/json"


def json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(
    value: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(json_bytes(value), status_code=status, media_type=JSON, headers=headers)


def error_body(code: str, message: str, suggestion: str) -> bytes:
    return json_bytes({"error_code": code, "message": message, "suggestion": suggestion})


def error_response(
    status: int,
    code: str,
    message: str,
    suggestion: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(code, message, suggestion), status_code=status, media_type=JSON, headers=headers
    )


class HttpProblem(Exception):
    """Raised by handlers: answered with our payload and ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        suggestion: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.suggestion = suggestion
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.suggestion, self.headers)


# Starlette raises HTTPException for routing failures; map them to our shape.
_ROUTING: dict[int, tuple[str, str, str]] = {
    404: ("NOT_FOUND", "No such endpoint.", "Check the URL against /openapi.yaml."),
    405: (
        "METHOD_NOT_ALLOWED",
        "This endpoint does not accept that method.",
        "Check the method against /openapi.yaml.",
    ),
}


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpProblem)
    return exc.response()


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message, suggestion = _ROUTING.get(
        exc.status_code, ("HTTP_ERROR", "The request could not be handled.", "Check the request.")
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(exc.status_code, code, message, suggestion, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts at this path (RFC 9110 §15.5.6).

    Starlette's 405 names the methods of the first route matching the path only; a
    path served by two routes (PUT and DELETE of a user cap) needs all of them.
    """
    methods: set[str] = set()
    for route in getattr(request.app, "routes", ()):
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods.update(route_methods)
    return sorted(methods)


def internal_error() -> Response:
    return error_response(
        500,
        "INTERNAL_ERROR",
        "The server failed to handle the request.",
        "Try again later; if it persists, contact the operator.",
    )


def register_handlers() -> dict[int | type[Exception], object]:
    """Exception handlers for `Starlette(exception_handlers=...)`.

    Unexpected exceptions are not handled here but by `InternalErrors` (which keeps
    the connection alive; Starlette's last-resort handler re-raises).
    """
    return {HttpProblem: _problem, HTTPException: _http_exception}
