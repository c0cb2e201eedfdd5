"""Helpers for the store tests, importable by spawned worker processes."""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from collections.abc import Sequence
from multiprocessing.connection import Connection

import psycopg

from server_stub.store import (
    AlreadyRedeemed,
    Redeemed,
    RedemptionRequest,
    open_store,
)


def request(
    jti: str,
    *,
    subject: str = "alice",
    kind: str = "points",
    amount: int = 1,
    unit: str = "points",
    campaign: str = "incident-1",
) -> RedemptionRequest:
    return RedemptionRequest(
        jti=jti,
        subject=subject,
        issuer="https://api.example.com",
        kind=kind,
        amount=amount,
        unit=unit,
        campaign=campaign,
    )


def raw_execute(url: str, sql: str) -> None:
    """Run one statement on the store's database, bypassing the store."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            connection.execute(sql)
        finally:
            connection.close()
        return
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(sql.encode())


def raw_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    """The rows of one query on the store's database, bypassing the store."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            return [tuple(row) for row in connection.execute(sql)]
        finally:
            connection.close()
    with psycopg.connect(url, autocommit=True) as pg:
        return [tuple(row) for row in pg.execute(sql.encode())]


def redeem_all(
    url: str, jtis: Sequence[str], threads: int, amount: int
) -> list[tuple[str, str, str]]:
    """Worker process: redeem every jti from several threads; (jti, outcome, id) each."""
    results: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    with open_store(url) as store:
        barrier = threading.Barrier(threads)

        def work() -> None:
            barrier.wait()
            for jti in jtis:
                outcome = store.redeem(request(jti, amount=amount, subject="s-" + jti))
                assert isinstance(outcome, Redeemed | AlreadyRedeemed)
                with lock:
                    results.append((jti, type(outcome).__name__, outcome.redemption.id))

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return results


def redeem_and_report(url: str, prefix: str, count: int, report: Connection) -> None:
    """Worker process: redeem prefix-0.. one by one; after each success, tell the parent."""
    with open_store(url) as store:
        for index in range(count):
            jti = f"{prefix}-{index}"
            outcome = store.redeem(request(jti, amount=2, subject="crash"))
            if isinstance(outcome, Redeemed):
                report.send(jti)
    report.send(None)


def sqlite_path(url: str) -> str:
    return urllib.parse.unquote(url[len("sqlite:///") :])
