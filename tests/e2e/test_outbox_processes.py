"""The outbox across real server processes and a real RabbitMQ.

- kill -9 of the server with deliveries pending, three times: every event still
  reaches the receiver at least once, and duplicates carry the same webhook-id;
- two replicas on one PostgreSQL database deliver each event once in the normal case;
- a RabbitMQ consumer receives every event, persistent, with message_id = outbox id;
- done when: one voucher from the demo shop, redeemed, reaches both a CRM stand-in
  (verifying with standardwebhooks) and a RabbitMQ consumer as compensation.issued
  and compensation.redeemed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from server_stub.store import OutboxStatus, open_store
from tests.support.server_support import ADMIN_KEY, ServerProcess, running
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.slow

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def issue(url: str, subject: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/v1/tokens",
        json={
            "subject": subject,
            "error_code": "PAY_001",
            "category": "business",
            "severity": "moderate",
            "compensation": {"kind": "points", "amount": 10, "unit": "points"},
        },
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def webhook_flags(receiver: Receiver, *extra: str) -> list[str]:
    return [
        "--webhook-url",
        receiver.url,
        "--webhook-secret",
        receiver.secret,
        "--allow-private-webhooks",
        "--webhook-retry-schedule",
        "0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1",
        "--outbox-lease",
        "1",
        *extra,
    ]


def test_kill_9_with_deliveries_pending_three_times_loses_no_event(
    store_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "key.pem"
    # The receiver refuses the first deliveries, so events are pending (retrying)
    # whenever the server is killed.
    with receiving(script=[500] * 12) as crm:
        issued: list[str] = []
        for round_ in range(3):
            server = ServerProcess(store_url, key, *webhook_flags(crm))
            try:
                # Counted before issuing: once the script is spent, this round's events
                # may all be delivered before the last issue returns.
                seen = len(crm.ids)
                for index in range(5):
                    issued.append(issue(server.url, f"user-{round_}-{index}")["jti"])
                wait_until(lambda seen=seen: len(crm.ids) > seen)  # mid-delivery
            finally:
                server.kill()
        # One last start drains the outbox.
        server = ServerProcess(store_url, key, *webhook_flags(crm))
        try:
            assert crm.wait_for(15, timeout=120)
        finally:
            server.stop()
    delivered = {p["data"]["jti"] for p in crm.verified}
    assert delivered == set(issued)
    # Duplicates (if any) are the same event: same id, same payload.
    by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for payload in crm.verified:
        by_id[payload["_id"]].append(payload)
    assert len(by_id) == 15
    assert all(all(p == group[0] for p in group) for group in by_id.values())
    with open_store(store_url) as store:
        assert {e.id for e in store.outbox_events()} == set(by_id)


@pytest.mark.postgres
def test_two_replicas_on_postgresql_deliver_each_event_once(store_url: str, tmp_path: Path) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    key = tmp_path / "key.pem"
    with receiving() as crm:
        first = ServerProcess(store_url, key, *webhook_flags(crm))
        second = ServerProcess(store_url, key, *webhook_flags(crm))
        try:
            for index in range(30):
                issue((first, second)[index % 2].url, f"user-{index}")
            assert crm.wait_for(30, timeout=60)
            with open_store(store_url) as store:
                wait_until(lambda: len(store.outbox_events(status=OutboxStatus.DELIVERED)) == 30)
        finally:
            first.stop()
            second.stop()
    assert len(crm.ids) == 30 == len(set(crm.ids))


async def _collect(queue: aio_pika.abc.AbstractQueue, count: int) -> list[Any]:
    got: list[Any] = []
    async with queue.iterator() as messages:
        async for message in messages:
            async with message.process():
                got.append(message)
            if len(got) >= count:
                break
    return got


def _with_rabbitmq(work: Callable[[str], Any], expected: int) -> list[Any]:
    """Bind a fresh queue to a fresh exchange, run ``work(exchange)``, collect messages."""
    exchange_name = f"errdiscount-test-{secrets.token_hex(4)}"

    async def main() -> list[Any]:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(f"{exchange_name}-crm", exclusive=True)
            await queue.bind(exchange, routing_key="compensation.#")
            await asyncio.to_thread(work, exchange_name)
            try:
                return await asyncio.wait_for(_collect(queue, expected), 60)
            finally:
                await queue.delete(if_unused=False, if_empty=False)
                await exchange.delete()
        finally:
            await connection.close()

    return asyncio.run(main())


def test_a_rabbitmq_consumer_receives_every_event(tmp_path: Path) -> None:
    ids: list[str] = []

    def work(exchange: str) -> None:
        flags = {
            "amqp_url": AMQP_URL,
            "amqp_exchange": exchange,
            "webhook_retry_schedule": (0.1, 0.1),
        }
        with running(tmp_path, **flags) as url:
            tokens = [issue(url, f"user-{i}")["token"] for i in range(3)]
            for token in tokens:
                assert httpx.post(f"{url}/v1/redemptions", json={"token": token}).status_code == 201
            with open_store(f"sqlite:///{tmp_path}/server.db") as store:
                done = wait_until(
                    lambda: (
                        len(store.outbox_events(status=OutboxStatus.DELIVERED)) == 6
                        and store.outbox_events(status=OutboxStatus.DELIVERED)
                    )
                )
            ids.extend(e.id for e in done)
            assert all(e.delivered_to == (f"amqp:{exchange}",) for e in done)

    messages = _with_rabbitmq(work, 6)
    assert sorted(m.message_id for m in messages) == sorted(ids)
    assert (
        sorted(m.routing_key for m in messages)
        == ["compensation.issued"] * 3 + ["compensation.redeemed"] * 3
    )
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in messages)
    assert all(json.loads(m.body)["type"] == m.routing_key for m in messages)


def test_one_demo_shop_voucher_reaches_the_crm_and_the_message_queue(tmp_path: Path) -> None:
    found: dict[str, Any] = {}

    def work(exchange: str) -> None:
        with receiving() as crm:
            server = ServerProcess(
                f"sqlite:///{tmp_path}/demo.db",
                tmp_path / "key.pem",
                "--demo",
                "--amqp-url",
                AMQP_URL,
                "--amqp-exchange",
                exchange,
                *webhook_flags(crm),
            )
            try:
                paid = httpx.post(f"{server.url}/demo/api/pay")
                assert paid.status_code == 402
                token = paid.json()["discount_token"]
                redeemed = httpx.post(f"{server.url}/v1/redemptions", json={"token": token})
                assert redeemed.status_code == 201
                found["jti"] = redeemed.json()["jti"]
                assert crm.wait_for(2)
                found["crm"] = list(crm.verified)
                wait_until(
                    lambda: (
                        httpx.get(paid.json()["alert_url"]).json()["grant_delivery"] == "delivered"
                    )
                )
            finally:
                server.stop()

    messages = _with_rabbitmq(work, 2)
    crm_events = {(p["type"], p["data"]["jti"]) for p in found["crm"]}
    assert crm_events == {
        ("compensation.issued", found["jti"]),
        ("compensation.redeemed", found["jti"]),
    }
    queued = {(m.routing_key, json.loads(m.body)["data"]["jti"]) for m in messages}
    assert queued == crm_events
    # The same event under the same id on both sinks.
    assert {p["_id"] for p in found["crm"]} == {m.message_id for m in messages}
