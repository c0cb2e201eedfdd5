"""`InternalErrors`: an unexpected exception is answered 500 and the connection lives on.

Starlette's own last-resort handler answers 500 and then re-raises, and uvicorn closes
a connection whose application raised after its response started: a keep-alive
client then sees its connection dropped without a word. This middleware answers
with our payload (`internal_error`) and does not re-raise, so the response is complete
and the connection is reused. The traceback goes to the server log only (the path is
logged with alert ids masked: they are bearer capabilities). If the response had
already started, nothing sound can be sent: it is logged and re-raised (uvicorn
closes that connection).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._access_log import mask_path
from ._problems import internal_error

__all__ = ["InternalErrors"]

log = logging.getLogger("server_stub")


class InternalErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            where = f"{scope.get('method', '')} {mask_path(scope.get('path', ''))}"
            if started:
                log.error("unhandled error after the response started on %s", where, exc_info=exc)
                raise
            log.error("unhandled error on %s", where, exc_info=exc)
            await internal_error()(scope, receive, send)
