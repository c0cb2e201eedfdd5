"""The hot budget row on PostgreSQL: does slicing it pay? In process, 2 replicas.

Usage: python benchmarks/budget_row.py [--postgres DSN] [--seconds 4] [--processes 2]
                                      [--threads 2] [--batches 1,16,64]

Every redemption of a campaign charges one budget row, and a batch holds that row's
lock from its charge to its commit, so batches of all replicas serialise there. This
measures how much that costs, with the store's own batch path
(`Store.redeem_idempotent_batch`, one PL/pgSQL call and one commit per batch):
``--processes`` processes (the replicas) each run ``--threads`` threads (the batches
a server keeps in flight, `RedeemBatcher`'s ``max_in_flight``), each thread sending
batch after batch of ``--batch`` keyed redemptions, on one fresh database per run.
Three layouts of the same work:

- ``one``: one budget row charged by every redemption (today);
- ``sliced4``: four budget rows, a redemption's chosen by its jti's hash (what slicing
  the row into 4 sub-rows per jti would give at best: no fallback, no summing; also
  what four campaigns with their own budgets, mixed in every batch, do today);
- ``batch4``: the same four rows, one chosen per batch (every item of a batch charges
  it: slicing per batch, or batches grouped by campaign);
- ``none``: no budget row at all (the budget step finds none: unlimited), the ceiling
  any slicing could reach.

A sampler reads ``pg_stat_activity`` every 5 ms and reports which share of the
database's active backends were waiting on a lock (``Lock`` wait events: the row
lock of the budget, mostly) against on CPU or other waits. If ``none`` is not clearly
faster than ``one``, the budget row is not the ceiling and slicing cannot pay.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: layout -> budget rows (campaigns c0..c{n-1}); "batch" layouts pick one per batch
LAYOUTS = {"one": 1, "sliced4": 4, "batch4": 4, "none": 0}


def worker(
    url: str,
    layout: str,
    sizes: tuple[int, int, int, float],
    ready: Any,
    out: Any,
) -> None:
    from server_stub.store import KeyedRedemption, RedemptionRequest, StoredResponse, open_store

    batch, threads, subjects, seconds = sizes
    store = open_store(url, render=lambda outcome: StoredResponse(201, b"{}"))
    rows = LAYOUTS[layout]
    run = uuid.uuid4().hex
    latencies: list[float] = []
    counted = [0]
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def loop(thread: int) -> None:
        mine: list[float] = []
        done = 0
        start.wait()
        deadline = time.perf_counter() + seconds
        serial = 0
        while time.perf_counter() < deadline:
            items = []
            per_batch = zlib.crc32(f"{run}-{thread}-{serial}".encode())
            for _ in range(batch):
                serial += 1
                jti = f"{run}-{thread}-{serial}"
                hashed = zlib.crc32(jti.encode())
                slot = (per_batch if layout == "batch4" else hashed) % rows if rows else 0
                request = RedemptionRequest(
                    jti=jti, subject=f"user-{hashed % subjects}", issuer="bench",
                    kind="points", amount=1, unit="points", campaign=f"c{slot}",
                )  # fmt: skip
                items.append(KeyedRedemption(request, "bench", jti, "fp"))
            began = time.perf_counter()
            results = store.redeem_idempotent_batch(items)
            mine.append(time.perf_counter() - began)
            done += sum(type(r).__name__ == "Redeemed" for r in results)
        with lock:
            latencies.extend(mine)
            counted[0] += done

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    ready.wait()  # every replica connected: they all measure the same seconds
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    store.close()
    out.put((counted[0], latencies))


def sample(dsn: str, database: str, stop: threading.Event, seen: Counter[str]) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        while not stop.is_set():
            for kind, event in connection.execute(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity"
                " WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()",
                (database,),
            ):
                seen["lock" if kind == "Lock" else "cpu" if kind is None else "other"] += 1
                if kind == "Lock":
                    seen[f"lock:{event}"] += 1
            time.sleep(0.005)


def one_run(dsn: str, layout: str, batch: int, options: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from server_stub.store import UserCap, open_store

    database = f"bench_budget_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    url = dsn.rsplit("/", 1)[0] + "/" + database
    try:
        with open_store(url) as store:
            for slot in range(LAYOUTS[layout]):
                store.set_budget("points", f"c{slot}", 10**15, unit="points")
            if options.caps:  # a per-user cap: one subject_usage row per subject and day
                store.set_user_cap(UserCap("*", 10**9, timedelta(days=1)))
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        ready = context.Barrier(options.processes)
        sizes = (batch, options.threads, options.subjects, options.seconds)
        args = (url, layout, sizes, ready, out)
        processes = [context.Process(target=worker, args=args) for _ in range(options.processes)]
        seen: Counter[str] = Counter()
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(dsn, database, stop, seen))
        for process in processes:
            process.start()
        sampler.start()
        results = [out.get(timeout=options.seconds + 120) for _ in processes]
        for process in processes:
            process.join()
        stop.set()
        sampler.join()
        time.sleep(1.2)  # statistics reach pg_stat_database within a second of idling
        with psycopg.connect(dsn, autocommit=True) as admin:
            found = admin.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (database,)
            ).fetchone()
        deadlocks = int(found[0]) if found else 0
        with open_store(url) as store:
            charged = sum(10**15 - b.remaining for b in store.budgets())
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    done = sum(count for count, _ in results)
    latencies = sorted(x for _, lat in results for x in lat)
    active = seen["lock"] + seen["cpu"] + seen["other"]
    if LAYOUTS[layout] and charged != done:
        raise SystemExit(f"{layout}: budgets charged {charged}, redeemed {done}")
    return {
        "layout": layout,
        "batch": batch,
        "per_s": done / options.seconds,
        "batch_p50_ms": statistics.median(latencies) * 1000,
        "batch_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "lock_share": seen["lock"] / active if active else 0.0,
        "deadlocks": deadlocks,
        "lock_events": {k[5:]: v for k, v in seen.items() if k.startswith("lock:")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--processes", type=int, default=2, help="replicas")
    parser.add_argument("--threads", type=int, default=2, help="batches in flight per replica")
    parser.add_argument("--batches", default="1,16,64", help="items per batch")
    parser.add_argument("--layouts", default="one,sliced4,batch4,none")
    parser.add_argument("--caps", action="store_true", help="a per-user cap on every kind")
    parser.add_argument("--subjects", type=int, default=10**6, help="distinct users")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (layouts interleaved)")
    options = parser.parse_args()
    load = _load()
    print(f"load average (1 min) at start: {load:.2f}", flush=True)
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(options.repeat):
        for batch in (int(b) for b in options.batches.split(",")):
            for layout in options.layouts.split(","):
                row = one_run(options.postgres, layout, batch, options)
                rows.setdefault((layout, batch), []).append(row)
                print(
                    f"{layout:8} batch {batch:3}: {row['per_s']:7.0f}/s, batch p50"
                    f" {row['batch_p50_ms']:6.1f} ms p99 {row['batch_p99_ms']:6.1f} ms,"
                    f" lock waits {row['lock_share']:.0%} of active samples,"
                    f" {row['deadlocks']} deadlocks"
                    f" {dict(row['lock_events'])}",
                    flush=True,
                )
    print(f"load average (1 min) at end: {_load():.2f}")
    print(
        "\n| layout | batch | redemptions/s, median | batch p99 ms, median | lock waits"
        " | deadlocks |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for (layout, batch), runs in rows.items():
        print(
            f"| {layout} | {batch} | {statistics.median(r['per_s'] for r in runs):.0f}"
            f" | {statistics.median(r['batch_p99_ms'] for r in runs):.1f}"
            f" | {statistics.median(r['lock_share'] for r in runs):.0%}"
            f" | {sum(r['deadlocks'] for r in runs)} |"
        )


def _load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


if __name__ == "__main__":
    main()
