"""Store throughput: full `Store.redeem` against a bare insert keyed on jti, same run.

Usage: python benchmarks/store_redeem.py [--n 3000] [--threads 1,8] [--postgres DSN]

For each back end and thread count it prints redemptions/s and p50/p99 latency of
`Store.redeem` (budget, cap, ledger row, idempotency record), next to a floor:
one `INSERT INTO r (jti) ... ON CONFLICT DO NOTHING` per transaction with the
same connection settings. The ratio (store / floor) is the figure to watch.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server_stub.store import RedemptionRequest, StoredResponse, UserCap, open_store


def measure(threads: int, n: int, op: Callable[[int], None]) -> tuple[float, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(start: int) -> None:
        mine: list[float] = []
        barrier.wait()
        for index in range(start, n, threads):
            began = time.perf_counter()
            op(index)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return n / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def store_op(url: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    store = open_store(url, render=lambda outcome: StoredResponse(201, b"{}"))
    store.set_budget("points", "bench", 10**15, unit="points")
    store.set_user_cap(UserCap(scope="*", max_redemptions=10**9, period=timedelta(days=1)))
    run = uuid.uuid4().hex

    def op(index: int) -> None:
        key = f"{run}-{index}"
        request = RedemptionRequest(
            jti=key, subject=f"user-{index % 500}", issuer="bench", kind="points",
            amount=1, unit="points", campaign="bench",
        )  # fmt: skip
        store.redeem_idempotent(request, scope="bench", key=key, fingerprint="fp")

    return op, store.close


def sqlite_floor(path: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    local = threading.local()
    write = threading.Lock()
    run = uuid.uuid4().hex
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE IF NOT EXISTS r (jti TEXT PRIMARY KEY, at REAL)")
    setup.close()

    def op(index: int) -> None:
        connection = getattr(local, "c", None)
        if connection is None:
            connection = local.c = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA busy_timeout = 10000")
        with write:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT INTO r VALUES (?, ?) ON CONFLICT DO NOTHING",
                (f"{run}-{index}", time.time()),
            )
            connection.execute("COMMIT")

    return op, lambda: None


def postgres_floor(dsn: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    import psycopg_pool

    pool = psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=10, kwargs={"autocommit": True})
    pool.wait()
    with pool.connection() as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (jti TEXT PRIMARY KEY, at FLOAT8)"
        )
    run = uuid.uuid4().hex

    def op(index: int) -> None:
        with pool.connection() as connection, connection.transaction():
            connection.execute(
                "INSERT INTO bench_floor VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (f"{run}-{index}", time.time()),
            )

    return op, pool.close


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--postgres", default=None, help="DSN of a scratch database")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [
            ("sqlite", f"sqlite:///{tmp}/store.db", lambda: sqlite_floor(f"{tmp}/floor.db"))
        ]
        if args.postgres:
            backends.append(("postgresql", args.postgres, lambda: postgres_floor(args.postgres)))
        for name, url, floor in backends:
            for threads in (int(t) for t in args.threads.split(",")):
                figures = {}
                for label, factory in (("floor", floor), ("store", lambda url=url: store_op(url))):
                    op, close = factory()
                    figures[label] = measure(threads, args.n, op)
                    close()
                ratio = figures["store"][0] / figures["floor"][0]
                row = {"backend": name, "threads": threads, "ratio": round(ratio, 2)}
                for label, (rate, p50, p99) in figures.items():
                    row[label] = {
                        "per_s": round(rate),
                        "p50_ms": round(p50, 2),
                        "p99_ms": round(p99, 2),
                    }
                results.append(row)
                print(json.dumps(row))


if __name__ == "__main__":
    main()
