"""One uvicorn server for the app: what the single process and every worker run.

Policy: the app is built from the settings, the heap settled (`settle_heap`) once it
is, and the server shut down gracefully within 5 s; ``on_started`` is called once it
listens (to print the ``listening on`` line, or to tell the supervisor).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

import uvicorn

from ._app import create_app
from ._heap import settle_heap
from ._settings import Settings
from .web._logging import log_config

__all__ = ["serve"]

GRACEFUL_SHUTDOWN_SECONDS = 5


async def serve(
    settings: Settings,
    *,
    on_started: Callable[[uvicorn.Server], None],
    sockets: Sequence[socket.socket] | None = None,
) -> bool:
    """Serve until shut down, on ``sockets`` or else ``settings.host:port``; True if it started."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_config=log_config(settings.log_format),
        log_level="info",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    settle_heap()
    task = asyncio.create_task(server.serve(sockets=None if sockets is None else list(sockets)))
    while not server.started and not task.done():  # noqa: ASYNC110 -- uvicorn has no event
        await asyncio.sleep(0.01)
    if server.started:
        on_started(server)
    await task
    return bool(server.started)
