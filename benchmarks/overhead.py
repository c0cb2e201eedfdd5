"""Per-call overhead of errdiscount's clients on a successful GET, vs raw httpx.

Run: ``python benchmarks/overhead.py`` (about 35 seconds).

A tiny ASGI app runs under uvicorn in a separate process on loopback, so the
server does not compete with the client for the GIL. Each round times a batch
of GETs with raw ``httpx.Client`` and a batch with our ``Client`` (default
policy: retries, budget, Idempotency-Key logic, hooks wiring), alternating
which goes first; the ratio of the medians of the batch times is reported.
The same for ``httpx.AsyncClient`` vs ``AsyncClient``. Target: <= 1.05.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from errdiscount_sdk import AsyncClient, Client  # noqa: E402

ROUNDS = 101
BATCH = 100
TARGET = 1.05

SERVER = """
import sys, uvicorn

BODY = b'{"ok":true,"items":[1,2,3]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
            access_log=False, lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/")
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)  # waiting for the server to start, not timing
    process.kill()
    raise SystemExit("benchmark server did not start")


def batch_sync(get: Callable[[str], Any]) -> float:
    start = time.perf_counter()
    for _ in range(BATCH):
        get("/item")
    return time.perf_counter() - start


async def batch_async(get: Callable[[str], Coroutine[Any, Any, Any]]) -> float:
    start = time.perf_counter()
    for _ in range(BATCH):
        await get("/item")
    return time.perf_counter() - start


def interleave(raw: Callable[[], float], ours: Callable[[], float]) -> tuple[float, float, float]:
    raw_times: list[float] = []
    our_times: list[float] = []
    for round_ in range(ROUNDS):
        if round_ % 2:
            raw_times.append(raw())
            our_times.append(ours())
        else:
            our_times.append(ours())
            raw_times.append(raw())
    raw_median = statistics.median(raw_times) / BATCH
    our_median = statistics.median(our_times) / BATCH
    return raw_median, our_median, our_median / raw_median


def run_sync_bench(url: str) -> tuple[float, float, float]:
    with httpx.Client(base_url=url) as raw, Client(base_url=url) as ours:
        for _ in range(BATCH):  # warm up both pools
            raw.get("/item")
            ours.get("/item")
        return interleave(lambda: batch_sync(raw.get), lambda: batch_sync(ours.get))


async def run_async_bench(url: str) -> tuple[float, float, float]:
    async with httpx.AsyncClient(base_url=url) as raw, AsyncClient(base_url=url) as ours:
        for _ in range(BATCH):
            await raw.get("/item")
            await ours.get("/item")
        loop = asyncio.get_running_loop()
        raw_times: list[float] = []
        our_times: list[float] = []
        for round_ in range(ROUNDS):
            pair = [(raw_times, raw.get), (our_times, ours.get)]
            if round_ % 2 == 0:
                pair.reverse()
            for times, get in pair:
                times.append(await batch_async(get))
        del loop
        raw_median = statistics.median(raw_times) / BATCH
        our_median = statistics.median(our_times) / BATCH
        return raw_median, our_median, our_median / raw_median


def main() -> int:
    process, url = start_server()
    try:
        started = time.perf_counter()
        rows = [
            ("sync", *run_sync_bench(url)),
            ("async", *asyncio.run(run_async_bench(url))),
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"{'client':<8} {'raw httpx µs/GET':>17} {'errdiscount µs/GET':>19} {'ratio':>7}  target")
    ok = True
    for name, raw, ours, ratio in rows:
        met = ratio <= TARGET
        ok = ok and met
        print(
            f"{name:<8} {raw * 1e6:>17.1f} {ours * 1e6:>19.1f} {ratio:>7.3f}  "
            f"{'met' if met else 'MISSED'} (<= {TARGET})"
        )
    print(
        f"\n({ROUNDS} interleaved rounds x {BATCH} GETs per client, medians; "
        f"{time.perf_counter() - started:.1f}s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
