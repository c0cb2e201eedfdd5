"""``errdiscount-server`` / ``python -m server_stub``: run the server under uvicorn.

Once listening, one line goes to stdout: ``errdiscount-server listening on URL``
(with ``--port 0`` that is how a supervisor or a test learns the port). Exit codes
(docs/server.md): 0 clean shutdown; 1 the server could not start (the database is
unreachable, its schema is newer than this server, the port is taken); 2 bad flags or
settings (including an unknown database URL scheme). Errors are one line on stderr,
``errdiscount-server: error: ...``, never a traceback.

``errdiscount-server migrate [--database URL] [--check]`` applies the store's migrations
(exit 0) or, with ``--check``, changes nothing and exits 0 when the schema is current,
1 when migrations are pending; 2 for bad flags, 3 when the database cannot be read or
its schema is newer than this code. No server is started.

``errdiscount-server dispatch`` and ``errdiscount-server outbox requeue``: see `_commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from errdiscount_sdk import ConfigurationError
from server_stub.store import StoreError, open_store

from ._app import create_app
from ._commands import dispatch_main, outbox_main
from ._serving import serve
from ._settings import DEFAULT_DATABASE, Settings, settings_from_args, worker_environment
from ._workers import REUSE_PORT_BALANCES, WorkersFailed, bind_port, serve_workers
from .domain._trust import load_or_create_signing_key
from .web._logging import log_config

__all__ = ["app_from_env", "main"]

#: could not start: database unreachable, schema newer than this server, port taken
EXIT_CANNOT_START = 1
#: bad flags or settings
EXIT_USAGE = 2


class CannotStart(Exception):
    """The server could not start; the message is the one line the operator sees."""


def app_from_env() -> object:
    """App factory for uvicorn workers (``--workers N``): settings from ERRDISCOUNT_*."""
    return create_app(settings_from_args([]))


def _check_database(settings: Settings) -> None:
    """Open (and migrate) the database once before serving, so that failures are one line.

    Migrating here, once, also keeps N workers from racing to migrate.
    """
    # The pool logs each failed connection attempt; the one line below says it all.
    pool_log = logging.getLogger("psycopg.pool")
    level = pool_log.level
    pool_log.setLevel(logging.CRITICAL)
    try:
        open_store(settings.database).close()
    except StoreError as exc:
        # StoreError messages never carry the URL (it may hold a password).
        raise CannotStart(f"cannot open the database: {exc}") from None
    finally:
        pool_log.setLevel(level)


def _shown_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def _serve(settings: Settings) -> None:
    def announce(server: uvicorn.Server) -> None:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        print(f"errdiscount-server listening on {_shown_url(host, port)}", flush=True)

    if not await serve(settings, on_started=announce):
        raise CannotStart("the server could not start (see the log above)")


def _listen(host: str, port: int) -> socket.socket:
    try:
        sock = bind_port(host, port)
    except OSError as exc:
        raise CannotStart(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listening now: connections made after the "listening" line wait in the backlog
    # until a worker accepts them, instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_workers(settings: Settings) -> None:
    def announce(port: int) -> None:
        print(
            f"errdiscount-server listening on {_shown_url(settings.host, port)} "
            f"({settings.workers} workers)",
            flush=True,
        )

    if REUSE_PORT_BALANCES:
        try:
            serve_workers(settings, announce)
        except WorkersFailed as exc:
            raise CannotStart(str(exc)) from None
        return
    # Elsewhere uvicorn's workers, sharing one socket; every setting goes to them
    # through the environment.
    os.environ.update(worker_environment(settings))
    # Bind here, so that --port 0 prints the port the workers really share.
    sock = _listen(settings.host, settings.port)
    announce(sock.getsockname()[1])
    uvicorn.run(
        "server_stub._main:app_from_env",
        factory=True,
        fd=sock.fileno(),
        workers=settings.workers,
        access_log=settings.access_log,
        log_config=log_config(settings.log_format),
        lifespan="on",
    )


def _migrate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errdiscount-server migrate",
        description="Apply the store's migrations (or check for pending ones); starts no server.",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("ERRDISCOUNT_DATABASE") or DEFAULT_DATABASE,
        help=f"database URL (default {DEFAULT_DATABASE}) [env ERRDISCOUNT_DATABASE]",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if migrations are pending, 0 if the schema is current",
    )
    return parser


def migrate_main(argv: Sequence[str]) -> int:
    """``errdiscount-server migrate``; see the module docstring for exit codes."""
    args = _migrate_parser().parse_args(argv)
    try:
        store = open_store(args.database, apply_migrations=not args.check, pool_size=1)
    except ConfigurationError as exc:
        print(f"errdiscount-server migrate: error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"errdiscount-server migrate: error: {exc}", file=sys.stderr)
        return 3
    try:
        pending = store.pending_migrations()
        version = store.schema
    except StoreError as exc:
        print(f"errdiscount-server migrate: error: {exc}", file=sys.stderr)
        return 3
    finally:
        store.close()
    if pending:
        names = ", ".join(f"{number} ({text})" for number, text in pending)
        print(f"schema version {version}; pending migrations: {names}")
        return 1
    print(f"schema version {version}: current")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    commands = {"migrate": migrate_main, "dispatch": dispatch_main, "outbox": outbox_main}
    if arguments[:1] and arguments[0] in commands:
        try:
            return commands[arguments[0]](arguments[1:])
        except SystemExit as exit_:  # argparse: --help (0) or usage errors (2)
            return int(exit_.code or 0)
    logging.config.dictConfig(log_config("text"))
    try:
        settings = settings_from_args(arguments)
        logging.config.dictConfig(log_config(settings.log_format))
        if settings.workers > 1:
            if settings.signing_key is None:
                raise ConfigurationError("--workers needs --signing-key (one key for all)")
            # Create the key once, before the workers race to do it.
            load_or_create_signing_key(settings.signing_key)
        _check_database(settings)
        if settings.workers > 1:
            _serve_workers(settings)
        else:
            asyncio.run(_serve(settings))
    except ConfigurationError as exc:
        print(f"errdiscount-server: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CannotStart as exc:
        print(f"errdiscount-server: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except KeyboardInterrupt:
        pass
    return 0
