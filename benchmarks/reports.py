"""Report latency: breakdowns and time series from the rollups against a GROUP BY over
the raw events, same data, same run.

Usage: python benchmarks/reports.py [--events 1000000] [--days 30] [--rounds 7]
                                    [--postgres DSN | --no-postgres]

Loads ``--events`` synthetic call events over ``--days`` days (90 device profiles,
12 endpoints, ~3 % failures, one OS version failing more, successes aggregated as
reporters send them) through the ingest's own transaction code in large chunks
(`server_stub.store._events.ingest`: the events, the minute and the daily rollups are
exactly what `Store.ingest_events` writes; only the 5000-per-call cap is bypassed).
Then, every round, in a rotating order (interleaved, so drift hits every variant
alike), each report over a window with ragged edges (the whole data minus a few hours
at each end):

- from the rollups (`server_stub.analytics`): breakdown of all 7 dimensions, of one
  (os_version), the cross-tab os_version x app_version, the time series (daily steps),
  and the time series of the last 7 days of the window in hourly steps (the default
  step of such a window, read from the minute rollups);
- from the raw events: the same sums as ``GROUP BY`` over the ``events`` table (one
  query per dimension for "all").

It prints the median and min..max seconds of each and the median ratio raw / rollups.
PostgreSQL uses ``--postgres`` or ERRDISCOUNT_TEST_POSTGRES_DSN (a scratch schema,
dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server_stub.analytics import DIMENSIONS, BreakdownQuery, TimeseriesQuery
from server_stub.analytics import breakdown as report_breakdown
from server_stub.analytics import timeseries as report_timeseries
from server_stub.store import Store, open_store
from server_stub.store import _events as store_events

START = datetime(2030, 1, 1, tzinfo=UTC)
ENDPOINTS = [f"{verb} /api/{name}" for verb in ("GET", "POST") for name in
             ("pay", "cart", "orders", "messages", "login", "feed")]  # fmt: skip
OS_VERSIONS = {"ios": ["16.7", "17.1", "17.2", "17.3", "17.4"], "android": ["12", "13", "14"]}
CODES = [("PAY_DOWN", "protocol"), ("MSG_FAILED", "protocol"), ("TIMEOUT", "network"),
         ("RATE", "rate_limit"), ("AUTH", "auth"), ("OUT_OF_STOCK", "business"),
         ("BAD_INPUT", "validation"), ("UNKNOWN", "unknown")]  # fmt: skip
CHUNK = 50_000


def profiles() -> list[tuple[str, str | None, str, str]]:
    found: list[tuple[str, str | None, str, str]] = []
    for platform, versions in (*OS_VERSIONS.items(), ("web", [None])):
        for os_version in versions:
            for app in range(5):
                for sdk in ("0.3.0", "0.4.0"):
                    found.append((platform, os_version, f"5.{app}.0", sdk))
    return found


def rows(count: int, days: int, seed: int = 15) -> list[dict[str, Any]]:
    """Event rows as `store_events.event_rows` makes them (checked by construction)."""
    rng = random.Random(seed)
    devices = profiles()
    span_us = days * 86_400_000_000
    start_us = int(START.timestamp()) * 1_000_000
    made = []
    for index in range(count):
        platform, os_version, app_version, sdk_version = rng.choice(devices)
        failed = rng.random() < (0.25 if os_version == "17.2" else 0.02)
        code, category = rng.choice(CODES) if failed else (None, None)
        made.append(
            {
                "event_id": f"ev-{seed}-{index}",
                "ts": start_us + rng.randrange(span_us),
                "kind": "call",
                "outcome": "error" if failed else "ok",
                "user_id": f"user-{rng.randrange(5000)}",
                "endpoint": rng.choice(ENDPOINTS),
                "method": "POST",
                "status": 503 if failed else 200,
                "error_code": code,
                "category": category,
                "severity": "moderate" if failed else None,
                "transient": 1 if failed else None,
                "attempts": 1,
                "duration_ms": 40.0,
                "platform": platform,
                "os_version": os_version,
                "app_version": app_version,
                "sdk_version": sdk_version,
                "source": "client",
                "params": "{}",
                "count": 1 if failed else 1 + index % 4,
                "segment": None,
                "extensions": "{}",
                "received_at": start_us,
            }
        )
    return made


def load(store: Store, made: list[dict[str, Any]]) -> float:
    began = time.perf_counter()
    for start in range(0, len(made), CHUNK):
        chunk = made[start : start + CHUNK]
        store._dialect.run(
            lambda tx, chunk=chunk: store_events.ingest(tx, chunk, submitted=len(chunk)),
            write=True,
        )
    return time.perf_counter() - began


def raw_variants(store: Store, since: datetime, until: datetime) -> dict[str, Callable[[], object]]:
    params = {"since": int(since.timestamp() * 1e6), "until": int(until.timestamp() * 1e6)}
    where = "WHERE ts >= :since AND ts < :until"
    failures = "SUM(CASE WHEN outcome = 'error' THEN count ELSE 0 END)"

    def query(sql: str) -> list[Any]:
        return store._dialect.run(lambda tx: tx.all(sql, params), write=False)

    def group(*columns: str) -> list[Any]:
        names = ", ".join(columns)
        return query(
            f"SELECT {names}, SUM(count) AS calls, {failures} AS failures, MIN(ts) AS first,"
            f" MAX(ts) AS last FROM events {where} GROUP BY {names}"
        )

    day = 86_400_000_000
    hour = 3_600_000_000
    week = {"since": params["until"] - 7 * day, "until": params["until"]}
    return {
        "all dimensions": lambda: [group(d) for d in DIMENSIONS],
        "one dimension": lambda: group("os_version"),
        "cross-tab": lambda: group("os_version", "app_version"),
        "time series": lambda: query(
            f"SELECT ts - ts % {day} AS bucket, SUM(count) AS calls, {failures} AS failures"
            f" FROM events {where} GROUP BY ts - ts % {day}"
        ),
        "hourly, 7 days": lambda: store._dialect.run(
            lambda tx: tx.all(
                f"SELECT ts - ts % {hour} AS bucket, SUM(count) AS calls,"
                f" {failures} AS failures FROM events {where} GROUP BY ts - ts % {hour}",
                week,
            ),
            write=False,
        ),
    }


def rollup_variants(store: Store, window: dict[str, str]) -> dict[str, Callable[[], object]]:
    now = START + timedelta(days=400)
    week = (datetime.fromisoformat(window["until"]) - timedelta(days=7)).isoformat()
    return {
        "all dimensions": lambda: report_breakdown(store, BreakdownQuery.from_params(window, now)),
        "one dimension": lambda: report_breakdown(
            store, BreakdownQuery.from_params({**window, "dimension": "os_version"}, now)
        ),
        "cross-tab": lambda: report_breakdown(
            store,
            BreakdownQuery.from_params(
                {**window, "dimension": "os_version", "by": "app_version"}, now
            ),
        ),
        "time series": lambda: report_timeseries(
            store, TimeseriesQuery.from_params({**window, "step": "day"}, now)
        ),
        "hourly, 7 days": lambda: report_timeseries(
            store, TimeseriesQuery.from_params({"since": week, "until": window["until"]}, now)
        ),
    }


def run(name: str, url: str, count: int, days: int, rounds: int) -> None:
    made = rows(count, days)
    store = open_store(url)
    try:
        loaded = load(store, made)
        del made
        since = START + timedelta(hours=5, minutes=13)
        until = START + timedelta(days=days) - timedelta(hours=2, minutes=31)
        window = {"since": since.isoformat(), "until": until.isoformat()}
        sizes = store._dialect.run(
            lambda tx: [
                int(tx.one(f"SELECT COUNT(*) AS n FROM {table}")["n"])
                for table in ("events", "event_rollups", "event_rollups_daily")
            ],
            write=False,
        )
        ops = {
            **{f"rollups: {k}": v for k, v in rollup_variants(store, window).items()},
            **{f"raw: {k}": v for k, v in raw_variants(store, since, until).items()},
        }
        for op in ops.values():  # warm caches; not measured
            op()
        timings: dict[str, list[float]] = {label: [] for label in ops}
        order = list(ops)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for label in order[shift:] + order[:shift]:
                began = time.perf_counter()
                ops[label]()
                timings[label].append(time.perf_counter() - began)
    finally:
        store.close()
    print(
        f"\n{name}: {count} events over {days} days loaded in {loaded:.0f} s"
        f" (rows: events {sizes[0]}, minute rollups {sizes[1]}, daily rollups {sizes[2]});"
        f" {rounds} rounds, seconds (median, min..max)"
    )
    for report in ("all dimensions", "one dimension", "cross-tab", "time series", "hourly, 7 days"):
        mine, raw = timings[f"rollups: {report}"], timings[f"raw: {report}"]
        ratio = statistics.median(r / m for r, m in zip(raw, mine, strict=True))
        print(
            f"  {report:15s} rollups {_spread(mine)}   raw {_spread(raw)}"
            f"   raw/rollups {ratio:5.1f}x"
        )


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.3f} ({min(values):.3f}..{max(values):.3f})"


def postgres_url(dsn: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    parts = urllib.parse.urlsplit(dsn)
    query = [*urllib.parse.parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query))), schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--postgres", default=os.environ.get("ERRDISCOUNT_TEST_POSTGRES_DSN"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.days <= 390 or args.events < 1 or args.rounds < 1:
        parser.error("--days is 1..390, --events and --rounds at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        run("SQLite", f"sqlite:///{scratch}/reports.db", args.events, args.days, args.rounds)
    if args.postgres and not args.no_postgres:
        import psycopg

        url, schema = postgres_url(args.postgres)
        try:
            run("PostgreSQL", url, args.events, args.days, args.rounds)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
