"""Redemption server throughput over HTTP, against a minimal-pipeline floor, same run.

Usage: python benchmarks/redeem.py [--n 2000] [--concurrency 32] [--postgres DSN]

Each target is a separate server process; the load comes from another process (an
async httpx script, 32 connections), which redeems each pre-minted EdDSA token once
and reports redemptions/s and p50/p99 latency. Targets:

- floor: a bare Starlette endpoint that verifies the token with pyjwt and commits one
  SQLite insert keyed on jti (WAL, synchronous=FULL, like the store), inline.
- server: ``python -m server_stub`` on SQLite (idempotency, budgets, ledger, rate limits).
- server-pg: the same on PostgreSQL (when --postgres or the default DSN answers).
- server-2w: two uvicorn workers on one SQLite file.

The figure to watch is server / floor (target >= 0.8) and the server's p99 (<= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = "bench-admin-key-0123456789"
ISSUER = "errdiscount-server"
AUDIENCE = "errdiscount"


# -- the floor: a minimal pipeline --------------------------------------------------


def floor_app(db_path: str, key_path: str):  # type: ignore[no-untyped-def]
    import jwt
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from errdiscount_sdk import load_signing_key_pem

    public = load_signing_key_pem(key_path).private_key.public_key()
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE IF NOT EXISTS r (jti TEXT PRIMARY KEY, sub TEXT, at REAL)")

    async def redeem(request: Request) -> JSONResponse:
        body = await request.json()
        claims = jwt.decode(
            body["token"], public, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
        )
        cursor = db.execute(
            "INSERT INTO r (jti, sub, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (claims["jti"], claims["sub"], time.time()),
        )
        if cursor.rowcount == 0:
            return JSONResponse({"error_code": "TOKEN_ALREADY_REDEEMED"}, status_code=409)
        return JSONResponse({"jti": claims["jti"], "subject": claims["sub"]}, status_code=201)

    return Starlette(routes=[Route("/v1/redemptions", redeem, methods=["POST"])])


def serve_floor(db_path: str, key_path: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        floor_app(db_path, key_path), host="127.0.0.1", port=0, access_log=False,
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        await task

    asyncio.run(run())


# -- the load process -----------------------------------------------------------------


async def load(url: str, tokens: list[str], concurrency: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(tokens))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def worker() -> None:
            while queue:
                token = queue.pop()
                began = time.perf_counter()
                response = await http.post(
                    "/v1/redemptions",
                    json={"token": token},
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        # Warm-up: open the connections before the clock starts.
        warm = queue[-concurrency:]
        del queue[-concurrency:]
        await asyncio.gather(*(http.post("/v1/redemptions", json={"token": t}) for t in warm))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "ok": statuses.get(201, 0) / len(latencies),
    }


def run_load(url: str, tokens_file: str, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, tokens_file, str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- orchestration ----------------------------------------------------------------------


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
            return process, url
    raise RuntimeError("server did not start: " + " ".join(args))


def wait_ready(url: str) -> None:
    import httpx

    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not ready")


def mint(key_path: str, n: int, path: Path) -> str:
    from errdiscount_sdk import TokenIssuer, load_signing_key_pem

    issuer = TokenIssuer(load_signing_key_pem(key_path), issuer=ISSUER, audience=AUDIENCE)
    tokens = [
        issuer.issue(
            subject=f"user-{secrets.token_hex(4)}",
            error_code="PAY_001",
            category="business",
            severity="moderate",
            compensation={"kind": "points", "amount": 100, "unit": "points"},
        )
        for _ in range(n)
    ]
    path.write_text("\n".join(tokens))
    return str(path)


def postgres_url(dsn: str) -> str | None:
    try:
        import psycopg

        name = f"errdiscount_bench_{secrets.token_hex(4)}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return dsn.rsplit("/", 1)[0] + "/" + name
    except Exception:
        return None


def drop_postgres(dsn: str, url: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip", default="", help="comma-separated targets to skip")
    options = parser.parse_args()
    from errdiscount_sdk import generate_signing_key, save_signing_key_pem

    skip = set(options.skip.split(","))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        key = str(Path(tmp) / "key.pem")
        save_signing_key_pem(generate_signing_key(), key)
        server_args = [
            sys.executable, "-m", "server_stub", "--port", "0", "--signing-key", key,
            "--admin-key", ADMIN, "--no-access-log", "--rate-ip", "100000000",
            "--rate-subject", "1000000", "--rate-burst", "1000000",
        ]  # fmt: skip
        pg = postgres_url(options.postgres) if "server-pg" not in skip else None
        targets: list[tuple[str, list[str]]] = [
            ("floor", [sys.executable, __file__, "--floor", f"{tmp}/floor.db", key]),
            ("server", [*server_args, "--database", f"sqlite:///{tmp}/server.db"]),
        ]
        if pg is not None:
            targets.append(("server-pg", [*server_args, "--database", pg]))
        targets.append(
            ("server-2w", [*server_args, "--database", f"sqlite:///{tmp}/w2.db", "--workers", "2"])
        )
        for name, args in targets:
            if name in skip:
                continue
            # Listening on a fixed free port: uvicorn workers need one known in advance.
            if "--workers" in args:
                import socket

                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    args = [*args[: args.index("--port") + 1], str(sock.getsockname()[1]),
                            *args[args.index("--port") + 2 :]]  # fmt: skip
            tokens = mint(key, options.n + options.concurrency, Path(tmp) / f"{name}.txt")
            process, url = start(args)
            try:
                wait_ready(url) if name != "floor" else None
                results[name] = run_load(url, tokens, options.concurrency)
            finally:
                process.terminate()
                process.wait(timeout=15)
            print(name, json.dumps({k: round(v, 2) for k, v in results[name].items()}), flush=True)
        if pg is not None:
            drop_postgres(options.postgres, pg)
    floor = results.get("floor", {}).get("rps")
    print()
    print("| target | redemptions/s | vs floor | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, figures in results.items():
        ratio = f"{figures['rps'] / floor:.2f}" if floor else "-"
        print(
            f"| {name} | {figures['rps']:.0f} | {ratio} | {figures['p50_ms']:.1f} |"
            f" {figures['p99_ms']:.1f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--floor":
        serve_floor(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        tokens = Path(sys.argv[3]).read_text().split("\n")
        print(json.dumps(asyncio.run(load(sys.argv[2], tokens, int(sys.argv[4])))))
    else:
        main()
