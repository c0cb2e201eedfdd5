"""A tiny event collector for reporter tests: a real Starlette app served by uvicorn.

It records every ``POST /v1/events`` (headers, bytes as received, decoded body,
arrival time) and answers from a script of (status, headers) pairs, then 202.
``hold()`` makes the next request wait until ``release()`` (a busy server).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.server import serve


@attrs.frozen
class Received:
    headers: dict[str, str]
    raw: bytes
    data: bytes
    body: dict[str, Any]
    at: float


class Collector:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._held = threading.Event()
        self._release = threading.Event()
        self._release.set()
        self.app = Starlette(routes=[Route("/v1/events", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        raw = await request.body()
        if not self._release.is_set():
            self._held.set()
            while not self._release.is_set():
                await asyncio.sleep(0.01)
        data = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        body = json.loads(data)
        with self._changed:
            self.received.append(Received(dict(request.headers), raw, data, body, time.monotonic()))
            status, headers = self.script.pop(0) if self.script else (202, {})
            self._changed.notify_all()
        return JSONResponse({"accepted": len(body["events"])}, status_code=status, headers=headers)

    def wait_for(self, requests: int, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received) >= requests, timeout)

    def hold(self) -> None:
        self._release.clear()

    def wait_held(self, timeout: float = 10.0) -> bool:
        return self._held.wait(timeout)

    def release(self) -> None:
        self._release.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return [event for item in self.received for event in item.body["events"]]

    @property
    def wire_bytes(self) -> bytes:
        with self._changed:
            return b"".join(item.data for item in self.received)


@contextlib.contextmanager
def serve_collector() -> Iterator[tuple[Collector, str]]:
    collector = Collector()
    with serve(collector.app) as url:
        try:
            yield collector, url
        finally:
            collector.release()


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A listening socket that accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
