"""The RabbitMQ sink (AMQP 0-9-1 through aio-pika): one durable topic exchange.

Each event is published persistent (delivery mode 2) with ``message_id`` = the outbox
id (consumers dedupe on it), ``type`` and routing key = the event type, on a channel
in publisher-confirm mode: the publish returns only when the broker confirmed it, and
only then is the event recorded as delivered to this sink. The exchange is declared
(durable, topic) if missing. Connection failures are delivery failures, retried on
the dispatcher's schedule; the connection is reopened on the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import aiormq.exceptions
from pamqp.commands import Basic

from ._base import Delivered, Failed, SinkOutcome

__all__ = ["AmqpSink"]

CONNECT_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 15.0


class AmqpSink:
    def __init__(self, url: str, exchange: str, *, event_types: tuple[str, ...] = ()) -> None:
        self._url = url
        self._exchange_name = exchange
        self._types = frozenset(event_types)
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._lock = asyncio.Lock()

    @property
    def id(self) -> str:
        return f"amqp:{self._exchange_name}"

    def accepts(self, event_type: str) -> bool:
        return not self._types or event_type in self._types

    async def _open(self) -> aio_pika.abc.AbstractExchange:
        async with self._lock:
            connection = self._connection
            if self._exchange is not None and connection is not None and not connection.is_closed:
                return self._exchange
            await self._drop()
            connection = await aio_pika.connect(self._url, timeout=CONNECT_TIMEOUT)
            try:
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
            except BaseException:
                await connection.close()
                raise
            self._connection, self._exchange = connection, exchange
            return exchange

    async def _drop(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(
                aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, OSError
            ):
                await connection.close()

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> SinkOutcome:
        message = aio_pika.Message(
            body,
            message_id=event_id,
            type=event_type,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=dt.datetime.now(dt.UTC),
        )
        try:
            exchange = await self._open()
            confirmation = await exchange.publish(
                message, routing_key=event_type, timeout=PUBLISH_TIMEOUT
            )
        except (
            aio_pika.exceptions.AMQPError,
            aiormq.exceptions.AMQPError,
            OSError,
            TimeoutError,
        ) as exc:
            await self._drop()
            return Failed(f"amqp: {type(exc).__name__}")
        if not isinstance(confirmation, Basic.Ack):
            return Failed("amqp: the broker did not confirm the message")
        return Delivered()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
