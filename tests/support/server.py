"""A real HTTP server on loopback for tests: uvicorn on port 0 in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns signals
        pass


@contextlib.contextmanager
def serve(app: Any, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL."""
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", lifespan="auto", timeout_graceful_shutdown=2
    )
    server = _QuietServer(config)
    loop_ready = threading.Event()

    def run() -> None:
        asyncio.run(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server failed to start")
        loop_ready.wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
