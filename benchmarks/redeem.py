"""Redemption server throughput over HTTP, against a minimal-pipeline floor, same run.

Usage: python benchmarks/redeem.py [--duration 6] [--repeat 3] [--connections 32]
                                   [--targets server,server-pg,server-pg-2w,floor-pg]
                                   [--postgres DSN] [--no-pin]

A check that the script works (not a measurement): ``--duration 2 --repeat 1``.

Load generator: ``wrk`` (``apt-get install wrk`` on Debian/Ubuntu, ``brew install wrk``
on macOS). A Lua script cycles through pre-minted EdDSA tokens, each redeemed once
(``POST /v1/redemptions``, ``{"token": ...}``, a unique ``Idempotency-Key`` per
request), over 32 keep-alive connections from one wrk thread; wrk's latency histogram
gives p50/p99 and the script counts every status. A run is valid only if every
response is a 201: otherwise it is reported as INVALID. Without wrk, the script falls
back, with a loud warning, to an async httpx load process that measures itself more
than the servers.

Honest on a shared machine: every target run is paired with a run of the floor
right before it (interleaved: floor, target, floor, target, ...), each pair gives one
ratio target/floor, and the whole sequence is repeated ``--repeat`` times (>= 3). The
report gives, per target, the median ratio with its spread (min-max) and the median
throughput and p99. Ratios measured side by side are what to compare across runs: the
absolute figures move with whatever else the machine is doing.

The floor: a bare Starlette endpoint that verifies the token with pyjwt and commits one
SQLite insert keyed on jti (WAL, synchronous=FULL, like the store), inline.
Targets, each a separate server process with a fresh database per run:

- server: ``python -m server_stub`` on SQLite, 1 worker (idempotency, budgets, ledger,
  rate limits raised out of the way, a ``points`` budget charged by every redemption);
- server-pg: the same on a fresh PostgreSQL database (created and dropped here);
- server-pg-2w: two uvicorn workers on one PostgreSQL database;
- floor-pg: the floor's pipeline with the insert on PostgreSQL through psycopg's
  AsyncConnectionPool on the event loop (what PostgreSQL costs a minimal server);
- server-2w (not by default): two workers on one SQLite file;
- any server target with ``-unkeyed`` appended (not by default, e.g.
  ``server-pg-unkeyed``): the same, requests without an ``Idempotency-Key``.

The machine may be shared: the script waits (up to 90 s) for the 1-minute load average
to fall below 1.5 (``LOADED_ABOVE``), prints it, and warns loudly when it is still
above, so figures taken next to other work are labelled as such. The average at the
end is printed too, without a verdict: by then it is mostly the benchmark's own load.
Fewer than 3 repetitions are flagged too.

CPU pinning (Linux ``taskset``, on by default when there are >= 2 CPUs): the
single-process servers run on CPU 0 and wrk on CPU 1; the 2-worker servers get every
CPU. PostgreSQL's own processes are never pinned (they share both CPUs).

Goals (issue 11): server-pg >= 1.0x the floor with p99 <= 50 ms, server >= 1.0x,
server-pg-2w not slower than server-pg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = "bench-admin-key-0123456789"
ISSUER = "errdiscount-server"
AUDIENCE = "errdiscount"
WARMUP_SECONDS = 2
WARMUP_TOKENS = 12_000

#: a target name's suffix: the same target, its requests without an Idempotency-Key
UNKEYED = "-unkeyed"
WRK_INSTALL = "sudo apt-get install wrk  (Debian/Ubuntu)  or  brew install wrk  (macOS)"
#: a 1-minute load average above this on the box means the figures share it with others
LOADED_ABOVE = 1.5
#: repetitions below this are a check that the script runs, not a measurement
MIN_REPEAT = 3


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


def floor_pg_app(dsn: str, key_path: str):  # type: ignore[no-untyped-def]
    """The floor's pipeline, the insert on PostgreSQL via an AsyncConnectionPool."""
    import contextlib

    import jwt
    import psycopg_pool
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from errdiscount_sdk import load_signing_key_pem

    public = load_signing_key_pem(key_path).private_key.public_key()
    pool = psycopg_pool.AsyncConnectionPool(
        dsn, min_size=10, max_size=10, kwargs={"autocommit": True}, open=False
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await pool.open(wait=True)
        async with pool.connection() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS r (jti TEXT PRIMARY KEY, sub TEXT, at DOUBLE PRECISION)"
            )
        yield
        await pool.close()

    async def redeem(request: Request) -> JSONResponse:
        body = await request.json()
        claims = jwt.decode(
            body["token"], public, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
        )
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "INSERT INTO r (jti, sub, at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (claims["jti"], claims["sub"], time.time()),
            )
        if cursor.rowcount == 0:
            return JSONResponse({"error_code": "TOKEN_ALREADY_REDEEMED"}, status_code=409)
        return JSONResponse({"jti": claims["jti"], "subject": claims["sub"]}, status_code=201)

    return Starlette(routes=[Route("/v1/redemptions", redeem, methods=["POST"])], lifespan=lifespan)


def serve_floor(db_path: str, key_path: str) -> None:
    import uvicorn

    app = (
        floor_pg_app(db_path, key_path)
        if db_path.startswith("postgresql://")
        else floor_app(db_path, key_path)
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, access_log=False, log_level="warning",
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


# -- the load: wrk + Lua ----------------------------------------------------------------

# Each wrk thread keeps the tokens whose line number modulo the thread count is its id,
# so no token is sent twice; running past the end is counted ("reused") and invalidates
# the run. Statuses are counted per thread and summed in done().
LUA = r"""
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  thread:set("nthreads", THREADS)
  thread:set("run", RUN)
  table.insert(threads, thread)
  next_id = next_id + 1
end

function init(args)
  tokens = {}
  statuses = {}
  reused = 0
  sent = 0
  position = 0
  local line_no = 0
  for line in io.lines(TOKENS) do
    if line ~= "" then
      if line_no % nthreads == id then tokens[#tokens + 1] = line end
      line_no = line_no + 1
    end
  end
end

function request()
  position = position + 1
  if position > #tokens then
    position = 1
    reused = reused + 1
  end
  sent = sent + 1
  local headers = {["Content-Type"] = "application/json"}
  if KEYED then headers["Idempotency-Key"] = run .. "-" .. id .. "-" .. sent end
  return wrk.format("POST", "/v1/redemptions", headers,
    '{"token":"' .. tokens[position] .. '"}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts, reuses = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
    reuses = reuses + thread:get("reused")
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f,'
    .. '"socket_errors":%d,"timeouts":%d,"reused":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write, e.timeout, reuses, table.concat(parts, ",")))
end
"""


def lua_script(directory: Path, tokens: Path, threads: int, keyed: bool) -> Path:
    script = directory / f"redeem-{tokens.stem}-{'keyed' if keyed else 'unkeyed'}.lua"
    source = LUA.replace("THREADS", str(threads)).replace("TOKENS", json.dumps(str(tokens)))
    source = source.replace("KEYED", "true" if keyed else "false")
    script.write_text(source.replace("RUN", json.dumps(secrets.token_hex(6))))
    return script


def run_wrk(
    url: str,
    tokens: Path,
    *,
    seconds: int,
    connections: int,
    threads: int,
    cpu: str | None,
    keyed: bool = True,
) -> dict[str, float]:
    script = lua_script(tokens.parent, tokens, threads, keyed)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "--latency", "-s", str(script), url,
    ]  # fmt: skip
    if cpu is not None:
        command = ["taskset", "-c", cpu, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line[len("BENCH ") :])
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    created = statuses.get(201, 0)
    bad = raw["requests"] - created + raw["socket_errors"] + raw["timeouts"]
    return {
        "rps": created / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "bad": bad,
        "reused": raw["reused"],
        "statuses": statuses,  # type: ignore[dict-item]
    }


# -- the fallback load: async httpx, in its own process ----------------------------------


async def httpx_load(url: str, tokens: list[str], concurrency: int) -> dict[str, object]:
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
        "rps": statuses.get(201, 0) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": 1000 * latencies[-1],
        "requests": len(latencies),
        "bad": len(latencies) - statuses.get(201, 0),
        "reused": 0,
        "statuses": statuses,
    }


def run_httpx(url: str, tokens: Path, n: int, concurrency: int) -> dict[str, float]:
    head = tokens.parent / "httpx-tokens.txt"
    head.write_text("\n".join(tokens.read_text().split("\n")[: n + concurrency]))
    out = subprocess.run(
        [sys.executable, __file__, "--httpx-load", url, str(head), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}  # type: ignore[attr-defined]
    return result


# -- tokens -------------------------------------------------------------------------------


def _mint_chunk(key_path: str, n: int) -> list[str]:
    from errdiscount_sdk import TokenIssuer, load_signing_key_pem

    issuer = TokenIssuer(load_signing_key_pem(key_path), issuer=ISSUER, audience=AUDIENCE)
    return [
        issuer.issue(
            subject=f"user-{secrets.token_hex(6)}",
            error_code="PAY_001",
            category="business",
            severity="moderate",
            compensation={"kind": "points", "amount": 100, "unit": "points"},
        )
        for _ in range(n)
    ]


def mint(key_path: str, n: int) -> list[str]:
    """``n`` distinct tokens (~70 µs each), signed in one process per CPU."""
    workers = max(1, min(os.cpu_count() or 1, 4))
    chunks = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_mint_chunk, [key_path] * workers, chunks)
        return [token for part in parts for token in part]


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


def set_budget(url: str, total: int) -> None:
    """A ``points`` budget the run cannot exhaust, so the budget row is charged each time."""
    import httpx

    response = httpx.put(
        url + "/v1/budgets/points/*",
        json={"total": total, "unit": "points"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    response.raise_for_status()


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


def free_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def pinning(enabled: bool) -> tuple[str | None, str | None, str | None]:
    """(server CPU, 2-worker server CPUs, wrk CPU) for taskset, or Nones."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None, None
    return str(cpus[0]), ",".join(map(str, cpus)), str(cpus[1])


def warn_no_wrk() -> None:
    bar = "!" * 78
    print(
        f"{bar}\n!! wrk not found: falling back to the async httpx load generator.\n"
        "!! It costs ~1 ms of CPU per request, so IT is the bottleneck: the figures\n"
        "!! below measure the load generator, not the servers. Install wrk:\n"
        f"!!     {WRK_INSTALL}\n{bar}",
        file=sys.stderr,
        flush=True,
    )


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def wait_for_quiet(seconds: float = 90.0) -> float | None:
    """Wait (up to ``seconds``) for the load average to fall below `LOADED_ABOVE`.

    A run started right after other work would otherwise carry its tail; then check.
    """
    deadline = time.monotonic() + seconds
    load = load_average()
    while load is not None and load > LOADED_ABOVE and time.monotonic() < deadline:
        print(f"load average {load:.2f} > {LOADED_ABOVE}: waiting for a quiet machine", flush=True)
        time.sleep(10)
        load = load_average()
    return check_load("start")


def check_load(when: str) -> float | None:
    """Print the load average; warn loudly when the box is busy with other work."""
    load = load_average()
    if load is None:
        print(f"load average at {when}: unknown on this platform", flush=True)
    elif load > LOADED_ABOVE:
        bar = "!" * 78
        print(
            f"{bar}\n!! load average at {when}: {load:.2f} (1 min) > {LOADED_ABOVE}: the\n"
            "!! machine is busy with other work, so these figures are not a measurement\n"
            f"!! of the servers alone. Rerun on a quiet machine.\n{bar}",
            flush=True,
        )
    else:
        print(f"load average at {when}: {load:.2f} (1 min)", flush=True)
    return load


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=6, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="floor/target pairs per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--tokens", type=int, default=40_000, help="tokens minted up front")
    parser.add_argument("--n", type=int, default=2000, help="requests (httpx fallback only)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--targets", default="server,server-pg,server-pg-2w,floor-pg")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs (taskset)")
    options = parser.parse_args()
    from errdiscount_sdk import generate_signing_key, save_signing_key_pem

    loads = [wait_for_quiet()]
    if options.repeat < MIN_REPEAT:
        print(
            f"!! --repeat {options.repeat} < {MIN_REPEAT}: no spread to speak of;"
            " a check that the script runs, not a measurement",
            flush=True,
        )
    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        warn_no_wrk()
    server_cpu, workers_cpus, wrk_cpu = pinning(not options.no_pin)
    wanted = [t for t in options.targets.split(",") if t]
    if not use_wrk and any(t.endswith(UNKEYED) for t in wanted):
        raise SystemExit("the -unkeyed targets need wrk (the httpx fallback always sends a key)")
    runs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {t: [] for t in wanted}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key = str(tmp / "key.pem")
        save_signing_key_pem(generate_signing_key(), key)
        began = time.perf_counter()
        tokens = mint(key, WARMUP_TOKENS + options.tokens)
        print(f"minted {len(tokens)} tokens in {time.perf_counter() - began:.1f} s", flush=True)
        # Every run has a fresh database, so all of them can redeem the same tokens.
        warm_file, main_file = tmp / "warm.txt", tmp / "main.txt"
        warm_file.write_text("\n".join(tokens[:WARMUP_TOKENS]))
        main_file.write_text("\n".join(tokens[WARMUP_TOKENS:]))
        available = [len(tokens) - WARMUP_TOKENS]
        server_args = [
            sys.executable, "-m", "server_stub", "--port", "0", "--signing-key", key,
            "--admin-key", ADMIN, "--no-access-log", "--rate-ip", "100000000",
            "--rate-subject", "1000000", "--rate-burst", "1000000",
        ]  # fmt: skip

        def command(name: str, run_id: str, database: str | None) -> tuple[list[str], str | None]:
            name = name.removesuffix(UNKEYED)
            if name == "floor":
                return [sys.executable, __file__, "--floor", f"{tmp}/{run_id}.db", key], server_cpu
            if name == "floor-pg":
                return [sys.executable, __file__, "--floor", str(database), key], server_cpu
            if name == "server":
                return [*server_args, "--database", f"sqlite:///{tmp}/{run_id}.db"], server_cpu
            if name == "server-2w":
                args = [
                    *server_args,
                    "--database",
                    f"sqlite:///{tmp}/{run_id}.db",
                    "--workers",
                    "2",
                ]
            elif name == "server-pg":
                return [*server_args, "--database", str(database)], server_cpu
            elif name == "server-pg-2w":
                args = [*server_args, "--database", str(database), "--workers", "2"]
            else:
                raise SystemExit(f"unknown target {name}")
            args[args.index("--port") + 1] = free_port()  # uvicorn workers need it up front
            return args, workers_cpus

        def measure(name: str, run_id: str) -> dict[str, float]:
            database = postgres_url(options.postgres) if "pg" in name else None
            if "pg" in name and database is None:
                raise SystemExit(f"{name}: {options.postgres} does not answer")
            try:
                args, cpu = command(name, run_id, database)
                process, url = start(["taskset", "-c", cpu, *args] if cpu is not None else args)
                try:
                    if name.startswith("server"):
                        wait_ready(url)
                        set_budget(url, 100 * 10 * len(tokens))
                    if not use_wrk:
                        return run_httpx(url, main_file, options.n, options.connections)
                    load = {"connections": options.connections, "threads": options.threads,
                            "cpu": wrk_cpu, "keyed": not name.endswith(UNKEYED)}  # fmt: skip
                    warm = run_wrk(url, warm_file, seconds=WARMUP_SECONDS, **load)  # type: ignore[arg-type]
                    needed = int(warm["rps"] * options.duration * 1.5)
                    if needed > available[0]:
                        more = mint(key, needed - available[0])
                        with main_file.open("a") as file:
                            file.write("\n" + "\n".join(more))
                        available[0] += len(more)
                    return run_wrk(url, main_file, seconds=options.duration, **load)  # type: ignore[arg-type]
                finally:
                    process.terminate()
                    process.wait(timeout=15)
            finally:
                if database is not None:
                    drop_postgres(options.postgres, database)

        for repetition in range(options.repeat):
            for name in wanted:
                floor = measure("floor", f"floor-{repetition}-{name}")
                target = measure(name, f"{name}-{repetition}")
                runs[name].append((floor, target))
                print(
                    f"round {repetition + 1} {name}: {target['rps']:.0f}/s vs floor"
                    f" {floor['rps']:.0f}/s = {target['rps'] / floor['rps']:.2f}x,"
                    f" p99 {target['p99_ms']:.1f} ms",
                    flush=True,
                )
    end = load_average()
    # Not a warning: by now the 1-minute average is mostly this benchmark's own load.
    print(f"load average at end: {'unknown' if end is None else f'{end:.2f}'} (1 min,"
          " this benchmark's own load included)", flush=True)  # fmt: skip
    loads.append(end)
    report(runs, use_wrk, (server_cpu, workers_cpus, wrk_cpu), loads)


def report(
    runs: dict[str, list[tuple[dict[str, float], dict[str, float]]]],
    use_wrk: bool,
    cpus: tuple[str | None, ...],
    loads: list[float | None],
) -> None:
    print()
    generator = "wrk" if use_wrk else "httpx (FALLBACK: measures the load generator)"
    pinned = "not pinned" if cpus[0] is None else (
        f"1-process servers on CPU {cpus[0]} (2 workers on {cpus[1]}), wrk on CPU {cpus[2]}"
    )  # fmt: skip
    print(f"load: {generator}; {pinned}; pairs per target: {max(map(len, runs.values()))}")
    shown = ", ".join("unknown" if x is None else f"{x:.2f}" for x in loads)
    busy = loads[0] is not None and loads[0] > LOADED_ABOVE  # the end includes our own load
    print(f"machine load average (1 min) at start, end: {shown}" + (" (BUSY)" if busy else ""))
    print(
        "| target | vs floor, median (min-max) | redemptions/s, median | floor/s, median"
        " | p99 ms, median (max) | non-201 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    invalid = []
    for name, pairs in runs.items():
        if not pairs:
            continue
        ratios = [target["rps"] / floor["rps"] for floor, target in pairs]
        p99 = [target["p99_ms"] for _, target in pairs]
        bad = sum(target["bad"] + target["reused"] + floor["bad"] for floor, target in pairs)
        if bad:
            invalid.append(name)
        print(
            f"| {name} | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            f" | {statistics.median(t['rps'] for _, t in pairs):.0f}"
            f" | {statistics.median(f['rps'] for f, _ in pairs):.0f}"
            f" | {statistics.median(p99):.1f} ({max(p99):.1f}) | {bad:.0f} |"
        )
    for name in invalid:
        print(f"INVALID: {name}: not every response was a 201")
    if invalid:
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--floor":
        serve_floor(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--httpx-load":
        tokens = Path(sys.argv[3]).read_text().split("\n")
        print(json.dumps(asyncio.run(httpx_load(sys.argv[2], tokens, int(sys.argv[4])))))
    else:
        main()
