"""The demo's message-queue consumer: a RabbitMQ queue bound like a CRM would bind it.

``errdiscount demo --amqp-url URL`` opens this *before* the payment flow (a message
published while no queue is bound is dropped by the broker): it declares the server's
durable topic exchange, an exclusive auto-delete queue bound with ``compensation.*``,
and consumes it on a thread of its own running its own event loop (aio-pika is async,
the demo is not). Messages are kept by ``message_id`` (the outbox id), so a redelivery
is recognised. On leaving, the exchange is deleted when the demo made its name up (a
named one may be the operator's) and the connection closed — the queue goes with it.

aio-pika is imported only here, and only when the flag is given: it is in the
``server`` extra, which the demo needs anyway; the SDK itself never needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from .._model.errors import ErrDiscountError

if TYPE_CHECKING:
    import aio_pika.abc

__all__ = ["BINDING", "QueueMessage", "QueueUnavailable", "QueueWatch", "queue_watch"]

#: what the demo's queue is bound with: the compensation events, as a CRM binds it
BINDING = "compensation.*"
CONNECT_TIMEOUT = 10.0
#: connecting, declaring and binding (or deleting and closing) take at most this long
SETUP_TIMEOUT = 20.0
#: an error's text is shown cut to this many characters
MAX_REASON = 200


class QueueUnavailable(ErrDiscountError):
    """The broker could not be reached, or refused the exchange, the queue or the binding."""


@attrs.frozen(slots=True)
class QueueMessage:
    """One message as the consumer saw it (its body is the outbox event, not shown)."""

    routing_key: str
    message_id: str
    delivery_mode: int

    @property
    def persistent(self) -> bool:
        return self.delivery_mode == 2  # AMQP 0-9-1: 2 = persistent, 1 = transient


class QueueWatch:
    """What arrived on the demo's queue; filled from the consumer's thread."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.messages: dict[str, QueueMessage] = {}  # message_id → the first copy
        self._arrived = threading.Condition()

    def record(self, message: QueueMessage) -> None:
        with self._arrived:
            self.messages.setdefault(message.message_id, message)  # at least once: dedupe
            self._arrived.notify_all()

    def wait_for(self, message_ids: set[str], timeout: float) -> bool:
        """True once a message arrived under each of ``message_ids`` (within ``timeout``)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: message_ids <= self.messages.keys(), timeout)


_QUIET = logging.NullHandler()


def _where(url: str) -> str:
    """The broker's address without its user name and password (never shown)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError:  # not a port number: say where without it
        return parts.hostname or "the given URL"
    return f"{parts.hostname}:{port}"


def _reason(error: BaseException, url: str) -> str:
    detail = next((arg for arg in error.args if isinstance(arg, str)), "")
    password = urlsplit(url).password
    if password:
        detail = detail.replace(password, "***")
    return f"{type(error).__name__}: {detail[:MAX_REASON]}" if detail else type(error).__name__


@contextlib.contextmanager
def queue_watch(url: str, exchange: str, *, delete_exchange: bool) -> Iterator[QueueWatch]:
    """Bind a queue to ``exchange`` at ``url`` and consume it until the block ends.

    Raises `QueueUnavailable` (one line, no password) when it cannot be set up. Whatever
    happens, the connection is closed (and, with ``delete_exchange``, the exchange deleted)
    before this returns.
    """
    import aio_pika
    import aio_pika.exceptions
    import aiormq.exceptions

    # The libraries log what they also raise ("error when creating transport: ..."); with
    # no handler configured, Python would print it on stderr next to our one line. A
    # NullHandler keeps that quiet and leaves handlers an application configured alone.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).addHandler(_QUIET)
    # ValueError: a URL aio-pika cannot use (the CLI checks its shape, not every detail).
    failures = (
        aio_pika.exceptions.AMQPError,
        aiormq.exceptions.AMQPError,
        OSError,
        TimeoutError,
        ValueError,
    )
    watch = QueueWatch(exchange)
    settled = threading.Event()  # set once the queue is consuming, or could not be
    stopping = threading.Event()
    consuming: list[bool] = []
    problem: list[str] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        watch.record(
            QueueMessage(
                routing_key=message.routing_key or "",
                message_id=message.message_id or "",
                delivery_mode=int(message.delivery_mode),
            )
        )

    async def shut(connection: aio_pika.abc.AbstractConnection) -> None:
        with contextlib.suppress(*failures):
            if delete_exchange:
                channel = await connection.channel()
                await channel.exchange_delete(exchange)
        with contextlib.suppress(*failures):
            await connection.close()

    async def declare() -> aio_pika.abc.AbstractConnection:
        connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT)
        try:
            channel = await connection.channel()
            topic = await channel.declare_exchange(
                exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(topic, routing_key=BINDING)
            # no_ack: the queue dies with the demo, there is nothing to redeliver.
            await queue.consume(on_message, no_ack=True)
        except BaseException:
            await shut(connection)
            raise
        return connection

    async def consume() -> None:
        try:
            connection = await asyncio.wait_for(declare(), SETUP_TIMEOUT)
            consuming.append(True)
        except failures as error:
            problem.append(f"cannot use RabbitMQ at {_where(url)} ({_reason(error, url)})")
            return
        finally:
            settled.set()
        try:
            await asyncio.to_thread(stopping.wait)
        finally:
            await asyncio.wait_for(shut(connection), SETUP_TIMEOUT)

    def run() -> None:
        with contextlib.suppress(*failures):  # a failure to close: nothing left to report
            asyncio.run(consume())

    thread = threading.Thread(target=run, name="demo-amqp-consumer", daemon=True)
    thread.start()
    try:
        settled.wait(SETUP_TIMEOUT + CONNECT_TIMEOUT)
        if not consuming:
            raise QueueUnavailable(
                problem[0] if problem else f"RabbitMQ at {_where(url)} did not answer"
            )
        yield watch
    finally:
        stopping.set()
        thread.join(SETUP_TIMEOUT + CONNECT_TIMEOUT)
