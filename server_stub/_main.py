"""``errdiscount-server`` / ``python -m server_stub``: run the server under uvicorn.

Once listening, one line goes to stdout: ``errdiscount-server listening on URL``
(with ``--port 0`` that is how a supervisor or a test learns the port). Exit codes
(docs/server.md): 0 clean shutdown; 1 the server could not start (the database is
unreachable, its schema is newer than this server, the port is taken); 2 bad flags or
settings (including an unknown database URL scheme). Errors are one line on stderr,
``errdiscount-server: error: ...``, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from errdiscount_sdk import ConfigurationError
from server_stub.store import StoreError, open_store

from ._app import create_app
from ._settings import Settings, settings_from_args, worker_environment
from .domain._trust import load_or_create_signing_key
from .web._access_log import access_log_config

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
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_config=access_log_config(),
        log_level="info",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 -- uvicorn has no event
        await asyncio.sleep(0.01)
    if server.started:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        print(f"errdiscount-server listening on {_shown_url(host, port)}", flush=True)
    await task
    if not server.started:
        raise CannotStart("the server could not start (see the log above)")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotStart(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listening now: connections made after the "listening" line wait in the backlog
    # until a worker accepts them, instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_workers(settings: Settings) -> None:
    # Workers are separate processes: every setting goes to them through the environment.
    os.environ.update(worker_environment(settings))
    # Bind here, so that --port 0 prints the port the workers really share.
    sock = _listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    print(
        f"errdiscount-server listening on {_shown_url(settings.host, port)} "
        f"({settings.workers} workers)",
        flush=True,
    )
    uvicorn.run(
        "server_stub._main:app_from_env",
        factory=True,
        fd=sock.fileno(),
        workers=settings.workers,
        access_log=settings.access_log,
        log_config=access_log_config(),
        lifespan="on",
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(argv)
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
