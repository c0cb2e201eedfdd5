"""A raw ASGI app whose bodies misbehave on purpose, served for real by `serve`.

Endpoints:
- ``/trickle?status=500&bytes=60&interval=0.5``: that status, then the body one
  byte per interval (a slow-loris answer); records whether the client hung up
  before the last byte.
- ``/huge?status=400&mb=100``: that status and a JSON-looking body of ``mb``
  MiB, streamed in 64 KiB chunks; records how many bytes it managed to send.
- ``/redirect``: 302 to ``/landing``; ``/landing``: 200 ``{"landed": true}``.
- ``/whoami``: 200 with the ``Authorization`` header it received.
- ``/ratelimited?after=120``: 429 with ``Retry-After``.
- ``/lines?n=3``: 200, ``n`` lines of text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

from tests.support.server import serve

_CHUNK = 64 * 1024


class HostileApp:
    """The ASGI app plus what it observed. One instance per test."""

    def __init__(self) -> None:
        self.hung_up = threading.Event()
        self.finished = threading.Event()
        self.bytes_sent = 0
        self.hits: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = dict(scope["headers"])
        if path == "/trickle":
            await self._trickle(query, receive, send)
        elif path == "/huge":
            await self._huge(query, receive, send)
        elif path == "/redirect":
            await _respond(send, 302, b"", [(b"location", b"/landing")])
        elif path == "/landing":
            await _respond(send, 200, b'{"landed": true}')
        elif path == "/whoami":
            seen = headers.get(b"authorization", b"").decode()
            await _respond(send, 200, json.dumps({"authorization": seen}).encode())
        elif path == "/ratelimited":
            after = query.get("after", "120").encode()
            await _respond(send, 429, b"", [(b"retry-after", after)])
        elif path == "/lines":
            body = "".join(f"line {i}\n" for i in range(int(query.get("n", "3"))))
            await _respond(send, 200, body.encode(), [(b"content-type", b"text/plain")])
        else:
            await _respond(send, 404, b"")

    async def _watch(self, receive: Any) -> asyncio.Task[None]:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.hung_up.set()

        return asyncio.create_task(watch())

    async def _trickle(self, query: dict[str, str], receive: Any, send: Any) -> None:
        status = int(query.get("status", "500"))
        total = int(query.get("bytes", "60"))
        interval = float(query.get("interval", "0.5"))
        watcher = await self._watch(receive)
        await send({"type": "http.response.start", "status": status, "headers": []})
        try:
            for _ in range(total):
                if self.hung_up.is_set():
                    return
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                self.bytes_sent += 1
                await asyncio.sleep(interval)
            await send({"type": "http.response.body", "body": b""})
            self.finished.set()
        except OSError:  # uvicorn's ClientDisconnected
            self.hung_up.set()
        finally:
            watcher.cancel()

    async def _huge(self, query: dict[str, str], receive: Any, send: Any) -> None:
        status = int(query.get("status", "400"))
        total = int(query.get("mb", "100")) * 1024 * 1024
        watcher = await self._watch(receive)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(total).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        chunk = b'{"error_code": "TOO_BIG", "pad": "' + b"x" * (_CHUNK - 35) + b'"}'
        try:
            while self.bytes_sent < total and not self.hung_up.is_set():
                piece = chunk[: total - self.bytes_sent]
                more = self.bytes_sent + len(piece) < total
                await send({"type": "http.response.body", "body": piece, "more_body": more})
                self.bytes_sent += len(piece)
                # uvicorn's send returns at once after a hang-up: let the watcher see it.
                await asyncio.sleep(0)
            if self.bytes_sent >= total:
                self.finished.set()
        except OSError:  # uvicorn's ClientDisconnected
            self.hung_up.set()
        finally:
            watcher.cancel()


async def _respond(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    base = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers or base})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serve_hostile() -> Iterator[tuple[HostileApp, str]]:
    """Serve a fresh `HostileApp` on loopback; yields it and its base URL."""
    app = HostileApp()
    with serve(app) as base_url:
        yield app, base_url
