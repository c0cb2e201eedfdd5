"""Event ingestion: `Store.ingest_events` against `executemany` of the same rows, same run.

Usage: python benchmarks/ingest.py [--rounds 15] [--batch 500] [--postgres DSN | --no-postgres]

For each back end, every round ingests four fresh batches of ``--batch`` events, in a
rotating order (interleaved, so drift and table growth hit every variant alike):

- store: `Store.ingest_events` (checks, JSON, deduping multi-row INSERT ... ON CONFLICT
  DO NOTHING RETURNING, Python aggregation, rollup, daily rollup and per-user upserts),
  one transaction;
- insert-only: the store's deduping INSERT alone, without the rollups (same transaction
  machinery);
- rollups: the aggregation and the three upserts (minute, daily, per-user) alone, in
  their own transaction (the rollup cost per event, its commit included);
- floor: ``executemany`` of a plain INSERT of the same rows into the same table, through
  the same connection and transaction (what a bulk load costs at best).

It prints the median events/s and the spread (min..max) of each, the median of the
per-round ratios store / floor (the issue's target: >= 0.5), and the rollup cost per
event in microseconds. PostgreSQL uses ``--postgres`` or ERRDISCOUNT_TEST_POSTGRES_DSN
(a scratch schema, dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server_stub.store import EventRecord, Store, open_store
from server_stub.store import _events as store_events

ENDPOINTS = ["POST /api/pay", "GET /api/orders/{id}", "GET /api/cart", "POST /api/login", "GET /"]
PLATFORMS = [("ios", "17.4"), ("android", "14"), ("web", None)]
_FLOOR_SQL = (
    f"INSERT INTO events ({', '.join(store_events.EVENT_COLUMNS)}) VALUES "
    f"({', '.join(':' + c for c in store_events.EVENT_COLUMNS)})"
)


def batch(size: int, start: datetime) -> list[EventRecord]:
    records = []
    for index in range(size):
        platform, os_version = PLATFORMS[index % 3]
        failed = index % 10 == 0
        records.append(
            EventRecord(
                event_id=str(uuid.uuid4()),
                ts=start + timedelta(milliseconds=index * 120),
                outcome="error" if failed else "ok",
                endpoint=ENDPOINTS[index % len(ENDPOINTS)],
                source="client" if index % 2 else "provider",
                user_id=f"user-{index % 97}",
                method="POST",
                status=503 if failed else 200,
                error_code="PAY_DOWN" if failed else None,
                category="protocol" if failed else None,
                severity="severe" if failed else None,
                transient=True if failed else None,
                attempts=3 if failed else 1,
                duration_ms=12.5 + index % 40,
                platform=platform,
                os_version=os_version,
                app_version=f"5.{index % 4}.0",
                sdk_version="0.4.0",
                params={"amount": {"type": "int"}, "currency": "EUR", "token": "[Filtered]"},
                count=1 if failed else 1 + index % 5,
            )
        )
    return records


def variants(store: Store) -> dict[str, Callable[[list[EventRecord]], None]]:
    dialect = store._dialect

    def full(records: list[EventRecord]) -> None:
        store.ingest_events(records)

    def insert_only(records: list[EventRecord]) -> None:
        rows = store_events.event_rows(records, 0)
        dialect.run(lambda tx: store_events._insert_new(tx, rows), write=True)

    def rollups_only(records: list[EventRecord]) -> None:
        rows = store_events.event_rows(records, 0)

        def work(tx: Any) -> None:
            rollups, users = store_events._aggregate(rows)
            store_events._UPSERT_ROLLUPS.run(tx, rollups)
            store_events._UPSERT_DAILY.run(tx, store_events.daily_rollups(rollups))
            store_events._UPSERT_USERS.run(tx, users)

        dialect.run(work, write=True)

    def floor(records: list[EventRecord]) -> None:
        rows = store_events.event_rows(records, 0)
        began = time.perf_counter()
        dialect.run(lambda tx: tx.executemany(_FLOOR_SQL, rows), write=True)
        # Only the database part counts for the floor: the rows are given.
        floor.elapsed = time.perf_counter() - began  # type: ignore[attr-defined]

    return {"store": full, "insert-only": insert_only, "rollups": rollups_only, "floor": floor}


def run(name: str, url: str, rounds: int, size: int) -> None:
    store = open_store(url)
    timings: dict[str, list[float]] = {
        name: [] for name in ("store", "insert-only", "rollups", "floor")
    }
    ratios: list[float] = []
    try:
        ops = variants(store)
        order = list(ops)
        start = datetime(2030, 1, 1, tzinfo=UTC)
        for warm in range(2):  # warm caches and connections; not measured
            for op in ops.values():
                op(batch(size, start + timedelta(hours=warm)))
        for round_index in range(rounds):
            shift = round_index % len(order)
            rotated = order[shift:] + order[:shift]
            per_round: dict[str, float] = {}
            for label in rotated:
                records = batch(
                    size, start + timedelta(days=1 + round_index, minutes=len(per_round))
                )
                began = time.perf_counter()
                ops[label](records)
                elapsed = time.perf_counter() - began
                if label == "floor":
                    elapsed = ops["floor"].elapsed  # type: ignore[attr-defined]
                per_round[label] = elapsed
                timings[label].append(elapsed)
            ratios.append(per_round["floor"] / per_round["store"])
    finally:
        store.close()
    print(f"\n{name}: {rounds} rounds of {size} events (median, min..max events/s)")
    for label, values in timings.items():
        rates = sorted(size / t for t in values)
        print(
            f"  {label:12s} {statistics.median(rates):9.0f}   {rates[0]:9.0f} .. {rates[-1]:9.0f}"
        )
    rollup = [elapsed / size * 1e6 for elapsed in timings["rollups"]]
    print(
        f"  store / floor ratio: median {statistics.median(ratios):.2f}"
        f" (min {min(ratios):.2f}, max {max(ratios):.2f}); target >= 0.5"
    )
    print(
        "  rollups (aggregate + upserts + commit) per event:"
        f" median {statistics.median(rollup):.1f} us"
        f" (min {min(rollup):.1f}, max {max(rollup):.1f})"
    )


def _with_schema(dsn: str, schema: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("ERRDISCOUNT_TEST_POSTGRES_DSN"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite (WAL, synchronous=FULL)", f"sqlite:///{tmp}/ingest.db", args.rounds, args.batch)
    if args.postgres and not args.no_postgres:
        import psycopg

        schema = f"bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                run("PostgreSQL", _with_schema(args.postgres, schema), args.rounds, args.batch)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
