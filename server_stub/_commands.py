"""``errdiscount-server dispatch`` and ``errdiscount-server outbox requeue|enable``.

``dispatch`` takes the server's flags (``--database`` and the sink flags; the rest
are ignored) and delivers the outbox until SIGINT/SIGTERM, without serving HTTP: run
it beside servers started with ``--no-dispatch``, or as several replicas.
``outbox requeue ID [ID ...] --database URL`` puts dead-lettered events back
(``--all-failed`` instead of ids: every one of them, e.g. after re-enabling a sink).
``outbox enable SINK [SINK ...] --database URL`` re-enables a sink the dispatcher
disabled (410, or 5 days of failures) and resets its failure streak: a registered
webhook endpoint (``we_...``, as ``POST /v1/webhook-endpoints/{id}/enable`` does) or a
``--webhook-url`` sink (``cfg_...``, the id its "disabled" log line names), which
has no admin API. The log line records the operating-system user as the actor.

Exit codes: 0 done; 1 an event was not found or not failed (requeue), or a sink is
neither a registered endpoint nor a disabled or failing configured sink (enable);
2 bad flags; 3 the database cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import logging.config
import os
import signal
import sys
from collections.abc import Sequence

from errdiscount_sdk import ConfigurationError
from server_stub.store import (
    EventNotFound,
    NotFailed,
    Store,
    StoreError,
    StoreInputError,
    open_store,
)

from ._settings import DEFAULT_DATABASE, settings_from_args
from .web._logging import log_config
from .workers._setup import build_dispatcher

__all__ = ["dispatch_main", "outbox_main"]

log = logging.getLogger("server_stub.outbox")


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
    requeue.add_argument("ids", nargs="*", metavar="ID", help="outbox event id")
    requeue.add_argument(
        "--all-failed", action="store_true", help="every dead letter (after a receiver is fixed)"
    )
    enable = commands.add_parser(
        "enable", help="re-enable a disabled sink and reset its failure streak"
    )
    enable.add_argument(
        "ids", nargs="+", metavar="SINK", help="webhook endpoint id (we_...) or cfg_... sink id"
    )
    for command in (requeue, enable):
        command.add_argument(
            "--database",
            default=os.environ.get("ERRDISCOUNT_DATABASE") or DEFAULT_DATABASE,
            help=f"database URL (default {DEFAULT_DATABASE}) [env ERRDISCOUNT_DATABASE]",
        )
    return parser


def _requeue(store: Store, event_id: str) -> bool:
    outcome = store.requeue_event(event_id)
    if isinstance(outcome, EventNotFound):
        _error("outbox", f"no event {event_id}")
        return False
    if isinstance(outcome, NotFailed):
        _error("outbox", f"{event_id} is {outcome.status.value}, not failed")
        return False
    print(f"requeued {event_id}")
    return True


def _actor() -> str:
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):  # no user name in this environment
        return "command line"


def _enable(store: Store, sink: str) -> bool:
    # A registered endpoint first (it exists even when healthy); else a configured sink,
    # known only by its health row.
    if store.enable_webhook_endpoint(sink) is None and not store.enable_sink(sink):
        _error("outbox", f"no webhook endpoint or disabled sink {sink}")
        return False
    log.info("outbox: webhook endpoint %s enabled by %s", sink, _actor())
    print(f"enabled {sink}")
    return True


def outbox_main(argv: Sequence[str]) -> int:
    parser = _outbox_parser()
    args = parser.parse_args(argv)
    if args.command == "requeue" and bool(args.ids) == args.all_failed:
        parser.error("requeue takes event ids or --all-failed (one of the two)")
    try:
        store = open_store(args.database, pool_size=1)
    except ConfigurationError as exc:
        _error("outbox", exc)
        return 2
    except StoreError as exc:
        _error("outbox", exc)
        return 3
    status = 0
    action = _requeue if args.command == "requeue" else _enable
    try:
        if args.command == "requeue" and args.all_failed:
            print(f"requeued {store.requeue_failed()} failed events")
        for item in args.ids:
            try:
                done = action(store, item)
            except StoreInputError as exc:  # an over-long or unprintable id
                _error("outbox", exc)
                done = False
            if not done:
                status = 1
    except StoreError as exc:
        _error("outbox", exc)
        return 3
    finally:
        store.close()
    return status
