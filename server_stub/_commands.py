"""``errdiscount-server dispatch`` and ``errdiscount-server outbox requeue``.

``dispatch`` takes the server's flags (``--database`` and the sink flags; the rest
are ignored) and delivers the outbox until SIGINT/SIGTERM, without serving HTTP: run
it beside servers started with ``--no-dispatch``, or as several replicas.
``outbox requeue ID [ID ...] --database URL`` puts dead-lettered events back.

Exit codes: 0 done; 1 an event was not found or not failed (requeue); 2 bad flags;
3 the database cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging.config
import os
import signal
import sys
from collections.abc import Sequence

from errdiscount_sdk import ConfigurationError
from server_stub.store import EventNotFound, NotFailed, StoreError, open_store

from ._settings import DEFAULT_DATABASE, settings_from_args
from .web._logging import log_config
from .workers._setup import build_dispatcher

__all__ = ["dispatch_main", "outbox_main"]


def _error(command: str, message: object) -> None:
    print(f"errdiscount-server {command}: error: {message}", file=sys.stderr)


async def _dispatch_forever(argv: Sequence[str]) -> int:
    settings = settings_from_args(argv)
    logging.config.dictConfig(log_config(settings.log_format))
    try:
        store = await asyncio.to_thread(open_store, settings.database, pool_size=4)
    except StoreError as exc:
        _error("dispatch", f"cannot open the database: {exc}")
        return 3
    dispatcher = build_dispatcher(settings, lambda: store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(dispatcher.run_forever())
    print(f"errdiscount-server dispatching as {dispatcher.owner}", flush=True)
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dispatcher.close()
        store.close()
    return 0


def dispatch_main(argv: Sequence[str]) -> int:
    try:
        return asyncio.run(_dispatch_forever(argv))
    except ConfigurationError as exc:
        _error("dispatch", exc)
        return 2


def _outbox_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errdiscount-server outbox", description="Inspect and repair the outbox."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    requeue = commands.add_parser("requeue", help="put dead-lettered (failed) events back")
    requeue.add_argument("ids", nargs="+", metavar="ID", help="outbox event id")
    requeue.add_argument(
        "--database",
        default=os.environ.get("ERRDISCOUNT_DATABASE") or DEFAULT_DATABASE,
        help=f"database URL (default {DEFAULT_DATABASE}) [env ERRDISCOUNT_DATABASE]",
    )
    return parser


def outbox_main(argv: Sequence[str]) -> int:
    args = _outbox_parser().parse_args(argv)
    try:
        store = open_store(args.database, pool_size=1)
    except ConfigurationError as exc:
        _error("outbox", exc)
        return 2
    except StoreError as exc:
        _error("outbox", exc)
        return 3
    status = 0
    try:
        for event_id in args.ids:
            outcome = store.requeue_event(event_id)
            if isinstance(outcome, EventNotFound):
                _error("outbox", f"no event {event_id}")
                status = 1
            elif isinstance(outcome, NotFailed):
                _error("outbox", f"{event_id} is {outcome.status.value}, not failed")
                status = 1
            else:
                print(f"requeued {event_id}")
    except StoreError as exc:
        _error("outbox", exc)
        return 3
    finally:
        store.close()
    return status
