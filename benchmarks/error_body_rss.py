"""Peak memory of one call that gets a 100 MiB error body, before and after the body cap.

Run: ``python benchmarks/error_body_rss.py [--baseline DIR] [--mb 100] [--rounds 3]``
(about 20 seconds). ``--baseline`` names a tree whose ``errdiscount_sdk`` is the
"before" (e.g. ``git archive e9be617 errdiscount_sdk | tar -x -C /tmp/old``).

A uvicorn server in its own process answers ``GET /huge`` with a 400 and a
JSON-looking body of ``--mb`` MiB. Each measurement is a fresh interpreter that
imports the SDK, records its peak RSS (``ru_maxrss``), makes one ``Client.get``
(which raises), and prints the growth of the peak: what the call cost in memory.
The sources alternate round by round; the median per source is reported.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

SERVER = """
import sys, uvicorn

TOTAL = int(sys.argv[2]) * 1024 * 1024
CHUNK = b"x" * (64 * 1024)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] != "/huge":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(TOTAL).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    sent = 0
    while sent < TOTAL:
        piece = CHUNK[: TOTAL - sent]
        sent += len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": sent < TOTAL})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical",
            access_log=False, lifespan="off")
"""

PROBE = """
import resource, sys
import errdiscount_sdk
from errdiscount_sdk import ApiError, Client

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with Client(retry=None, timeout=30) as client:
    try:
        client.get(sys.argv[1] + "/huge")
    except ApiError as error:
        kept = len(error.response.content) if error.response is not None else 0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, kept)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(mb: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # uvicorn logs every send after the client hung up: keep its stderr out of the report.
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(mb)], stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/")
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)  # waiting for the server to start, not timing
    process.kill()
    raise SystemExit("benchmark server did not start")


def probe(source: Path, url: str) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    # cwd=source: "python -c" puts the working directory first on sys.path.
    out = subprocess.run(
        [sys.executable, "-c", PROBE, url],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = {"this tree": ROOT}
    if args.baseline is not None:
        sources = {"baseline": args.baseline, **sources}
    process, url = start_server(args.mb)
    try:
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in sources}
        for round_number in range(args.rounds):
            order = list(sources) if round_number % 2 == 0 else list(reversed(sources))
            for name in order:
                results[name].append(probe(sources[name], url))
    finally:
        process.kill()
        process.wait()
    print(f"one GET answered by a 400 with a {args.mb} MiB body; {args.rounds} rounds")
    for name, runs in results.items():
        growth = statistics.median(mib for mib, _ in runs)
        print(
            f"{name:10} peak RSS growth {growth:7.1f} MiB "
            f"(runs: {', '.join(f'{mib:.1f}' for mib, _ in runs)}); "
            f"error.response.content: {runs[0][1]} bytes"
        )


if __name__ == "__main__":
    main()
