"""Request ids: taken from ``X-Request-Id`` when the caller sends a valid one, else made.

The id is echoed in the response and is visible to every log line of the request (through
a context variable read by `server_stub.web._logging`). A caller's id is accepted only if it
is 1 to 128 characters of ``[A-Za-z0-9._:-]``: anything else could forge or split log lines,
and is replaced by a fresh id rather than refused (an id is a courtesy, not a contract).
"""

from __future__ import annotations

import contextvars
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errdiscount_sdk.wire import REQUEST_ID_HEADER

__all__ = ["RequestIdMiddleware", "current_request_id", "valid_request_id"]

_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "errdiscount_request_id", default=None
)


def valid_request_id(value: str | None) -> bool:
    return value is not None and _VALID.fullmatch(value) is not None


def current_request_id() -> str | None:
    """The id of the request being served in this context, or None outside one."""
    return _request_id.get()


class RequestIdMiddleware:
    """Plain ASGI middleware: sets the request id for the request and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                given = value.decode("latin-1")
                break
        request_id = given if valid_request_id(given) else uuid.uuid4().hex
        assert request_id is not None
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != _HEADER]
                headers.append((_HEADER, encoded))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
