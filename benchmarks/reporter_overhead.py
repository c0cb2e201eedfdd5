"""Cost of an `ErrorReporter` on a successful loopback GET, and how fast `close()` returns.

Run: ``python benchmarks/reporter_overhead.py`` (about 40 seconds).

A tiny ASGI app (the API, plus ``POST /v1/events`` answering 202) runs under
uvicorn in a separate process, so the server does not compete with the client
for the GIL. For each collector state — up (that app), refused (a closed
port), black-holed (a listening socket that never answers) — each round times
a batch of GETs with ``Client()`` and a batch with ``Client(reporter=...)``,
alternating which goes first; the ratio of the medians of the batch times is
reported with the spread (interquartile range over the median). Then
``reporter.close()`` is timed. Targets: ratio <= 1.05, close <= 2 s.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from errdiscount_sdk import Client  # noqa: E402
from errdiscount_sdk._report.reporter import ErrorReporter  # noqa: E402

ROUNDS = 61
BATCH = 100
TARGET = 1.05
CLOSE_TARGET = 2.0

SERVER = """
import sys, uvicorn

BODY = b'{"ok":true,"items":[1,2,3]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
ACCEPTED = b'{"accepted":0}'

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/v1/events":
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": ACCEPTED})
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


def batch(get: Callable[[str], object]) -> float:
    start = time.perf_counter()
    for index in range(BATCH):
        get(f"/items/{index}")
    return time.perf_counter() - start


def spread(times: list[float]) -> float:
    quartiles = statistics.quantiles(times, n=4)
    return (quartiles[2] - quartiles[0]) / statistics.median(times)


def measure(api: str, collector: str) -> tuple[float, float, float, float, float, float]:
    reporter = ErrorReporter(collector, app_key="bench-key", user_id="user-1")
    with Client(base_url=api) as plain, Client(base_url=api, reporter=reporter) as reported:
        for _ in range(BATCH):  # warm up both pools (and start the sender thread)
            plain.get("/items/1")
            reported.get("/items/1")
        plain_times: list[float] = []
        reported_times: list[float] = []
        for round_ in range(ROUNDS):
            if round_ % 2:
                plain_times.append(batch(plain.get))
                reported_times.append(batch(reported.get))
            else:
                reported_times.append(batch(reported.get))
                plain_times.append(batch(plain.get))
    # An error event too, so close() has something it cannot deliver when the collector is down.
    reporter.record_call(method="GET", path="/items/1", status=503)
    started = time.perf_counter()
    reporter.close()
    closed_in = time.perf_counter() - started
    plain_median = statistics.median(plain_times) / BATCH
    reported_median = statistics.median(reported_times) / BATCH
    return (
        plain_median,
        reported_median,
        reported_median / plain_median,
        spread(plain_times),
        spread(reported_times),
        closed_in,
    )


def main() -> int:
    process, api = start_server()
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(1024)
    collectors = {
        "up": api,
        "refused": f"http://127.0.0.1:{free_port()}",
        "black-holed": f"http://127.0.0.1:{hole.getsockname()[1]}",
    }
    try:
        started = time.perf_counter()
        rows = [(name, *measure(api, url)) for name, url in collectors.items()]
    finally:
        hole.close()
        process.terminate()
        process.wait(timeout=10)
    print(
        f"{'collector':<12} {'Client µs/GET':>14} {'+reporter µs/GET':>17} {'ratio':>7} "
        f"{'spread':>13} {'close s':>8}  target"
    )
    ok = True
    for name, plain, reported, ratio, plain_spread, reported_spread, closed_in in rows:
        met = ratio <= TARGET and closed_in <= CLOSE_TARGET
        ok = ok and met
        print(
            f"{name:<12} {plain * 1e6:>14.1f} {reported * 1e6:>17.1f} {ratio:>7.3f} "
            f"{plain_spread:>6.1%}/{reported_spread:<6.1%} {closed_in:>8.3f}  "
            f"{'met' if met else 'MISSED'} (<= {TARGET}, close <= {CLOSE_TARGET} s)"
        )
    print(
        f"\n({ROUNDS} interleaved rounds x {BATCH} GETs per client and collector state, "
        f"medians; spread = IQR / median; {time.perf_counter() - started:.1f}s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
