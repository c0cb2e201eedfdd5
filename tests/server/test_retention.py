"""The retention worker prunes old events in the background (and survives failures)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from server_stub.store import DeliveryResult, EventRecord, IssuedToken, open_store
from server_stub.workers._retention import prune_forever, prune_once
from tests.conftest import FakeClock
from tests.support.server_support import APP_KEY, admin, running


def _event(ts: datetime) -> EventRecord:
    return EventRecord(
        event_id=str(uuid.uuid4()), ts=ts, outcome="ok", endpoint="GET /a", source="client"
    )


def test_the_server_prunes_old_events_once_started(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with open_store(f"sqlite:///{tmp_path}/server.db") as store:
        store.ingest_events([_event(now - timedelta(days=8)), _event(now - timedelta(days=1))])
    with running(tmp_path, event_retention_days=7) as url:
        deadline = time.monotonic() + 10
        while True:
            events = httpx.get(
                f"{url}/v1/events", headers={"Authorization": f"Bearer {APP_KEY}"}
            ).json()["events"]
            if len(events) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert len(events) == 1


def test_the_server_prunes_delivered_outbox_events_and_keeps_dead_letters(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    clock.now = datetime.now(UTC) - timedelta(days=40)
    with open_store(f"sqlite:///{tmp_path}/server.db", clock=clock) as store:
        store.record_issued(_issued("delivered-long-ago"))
        clock.now += timedelta(microseconds=1)  # ids are time-ordered
        store.record_issued(_issued("dead-long-ago"))
        old, dead = store.claim_events("earlier-dispatcher")
        store.finish_deliveries(
            [
                DeliveryResult(old.id, old.owner, ("sink-a",)),
                DeliveryResult(dead.id, dead.owner, error="sink-a: HTTP 500"),
            ]
        )
        assert store.outbox_event(old.id).payload["data"]["jti"] == "delivered-long-ago"  # type: ignore[union-attr]
    with running(tmp_path, outbox_retention_days=30) as url:
        # A fresh event, delivered (to nobody: no sink) by this server's dispatcher.
        fresh = httpx.post(
            f"{url}/v1/tokens",
            json={
                "subject": "bob",
                "error_code": "PAY_001",
                "category": "business",
                "severity": "minor",
                "compensation": {"kind": "points", "amount": 1, "unit": "points"},
            },
            headers=admin(),
        ).json()
        deadline = time.monotonic() + 10
        while True:
            listed = httpx.get(f"{url}/v1/outbox", headers=admin()).json()["events"]
            jtis = sorted((e["payload"]["data"]["jti"], e["status"]) for e in listed)
            done = all(status != "pending" and status != "delivering" for _, status in jtis)
            if (done and len(jtis) == 2) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert jtis == sorted([("dead-long-ago", "failed"), (fresh["jti"], "delivered")])


def _issued(jti: str) -> IssuedToken:
    return IssuedToken(
        jti=jti,
        subject="alice",
        issuer="errdiscount-server",
        kind="points",
        amount=5,
        unit="points",
        campaign="points",
        expires_at=datetime(2031, 1, 1, tzinfo=UTC),
        alert_id=f"alert-{jti}-" + "x" * 20,
        token="header.payload.signature",
    )


def test_the_loop_repeats_and_a_failed_round_does_not_stop_it(tmp_path: Path) -> None:
    # Its own loop on its own thread: the browser tests' session keeps a loop running
    # on the main thread, so an async test could not start one there.
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_loop_repeats(tmp_path))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    if failure:
        raise failure[0]


async def _loop_repeats(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/loop.db")
    now = datetime.now(UTC)
    task = asyncio.create_task(
        prune_forever(store, event_retention_days=1, rollup_retention_days=1, interval=0.01)
    )
    try:
        store.ingest_events([_event(now - timedelta(days=2))])
        for _ in range(500):
            if not store.events():
                break
            await asyncio.sleep(0.01)
        assert store.events() == []
        store.ingest_events([_event(now - timedelta(days=3))])  # a later round prunes it too
        for _ in range(500):
            if not store.events():
                break
            await asyncio.sleep(0.01)
        assert store.events() == []
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
    # A closed store fails: the round reports None instead of raising.
    assert await prune_once(store, event_retention_days=1, rollup_retention_days=1) is None
