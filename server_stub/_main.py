"""``errdiscount-server`` / ``python -m server_stub``: run the server under uvicorn.

Once listening, one line goes to stdout: ``errdiscount-server listening on URL``
(with ``--port 0`` that is how a supervisor or a test learns the port). Exit codes:
0 clean shutdown, 1 the server could not start, 2 bad flags or settings.

``errdiscount-server migrate [--database URL] [--check]`` applies the store's migrations
(exit 0) or, with ``--check``, changes nothing and exits 0 when the schema is current,
1 when migrations are pending; 2 for bad flags, 3 when the database cannot be read or
its schema is newer than this code. No server is started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import uvicorn

from errdiscount_sdk import ConfigurationError
from server_stub.store import StoreError, open_store

from ._app import create_app
from ._settings import DEFAULT_DATABASE, Settings, settings_from_args
from .domain._trust import load_or_create_signing_key
from .web._logging import configure_logging

__all__ = ["app_from_env", "main"]


def app_from_env() -> object:
    """App factory for uvicorn workers (``--workers N``): settings from ERRDISCOUNT_*."""
    return create_app(settings_from_args([]))


async def _serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level="info",
        lifespan="on",
        timeout_graceful_shutdown=5,
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 -- uvicorn has no event
        await asyncio.sleep(0.01)
    if server.started:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"errdiscount-server listening on http://{shown}:{port}", flush=True)
    await task
    if not server.started:
        raise SystemExit(1)


def _serve_workers(settings: Settings) -> None:
    # Workers are separate processes: they read the same settings from the environment.
    env = {
        "ERRDISCOUNT_HOST": settings.host,
        "ERRDISCOUNT_PORT": str(settings.port),
        "ERRDISCOUNT_DATABASE": settings.database,
        "ERRDISCOUNT_ISSUER": settings.issuer,
        "ERRDISCOUNT_AUDIENCE": settings.audience,
        "ERRDISCOUNT_TRUSTED_JWKS": " ".join(settings.trusted_jwks),
        "ERRDISCOUNT_APP_KEY": " ".join(settings.app_keys),
        "ERRDISCOUNT_CORS_ORIGIN": " ".join(settings.cors_origins),
        "ERRDISCOUNT_RATE_IP": str(settings.rate_ip_per_minute),
        "ERRDISCOUNT_RATE_SUBJECT": str(settings.rate_subject_per_minute),
        "ERRDISCOUNT_RATE_BURST": str(settings.rate_burst),
        "ERRDISCOUNT_ACCESS_LOG": "1" if settings.access_log else "0",
        "ERRDISCOUNT_WORKERS": "1",
        "ERRDISCOUNT_LOG_FORMAT": settings.log_format,
    }
    optional = {
        "ERRDISCOUNT_SIGNING_KEY": settings.signing_key,
        "ERRDISCOUNT_ADMIN_KEY": settings.admin_key,
        "ERRDISCOUNT_PUBLIC_URL": settings.public_url,
        "ERRDISCOUNT_POLICY": settings.policy,
    }
    env.update({name: value for name, value in optional.items() if value})
    os.environ.update(env)
    print(
        f"errdiscount-server listening on http://{settings.host}:{settings.port} "
        f"({settings.workers} workers)",
        flush=True,
    )
    uvicorn.run(
        "server_stub._main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=settings.access_log,
        lifespan="on",
        log_config=None,
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
    if arguments[:1] == ["migrate"]:
        try:
            return migrate_main(arguments[1:])
        except SystemExit as exit_:  # argparse: --help (0) or usage errors (2)
            return int(exit_.code or 0)
    try:
        settings = settings_from_args(arguments)
        configure_logging("json" if settings.log_format == "json" else "text")
        if settings.workers > 1:
            if settings.signing_key is None:
                raise ConfigurationError("--workers needs --signing-key (one key for all)")
            # Create the key once, before the workers race to do it.
            load_or_create_signing_key(settings.signing_key)
            _serve_workers(settings)
        else:
            asyncio.run(_serve(settings))
    except ConfigurationError as exc:
        print(f"errdiscount-server: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
