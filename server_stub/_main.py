"""``errdiscount-server`` / ``python -m server_stub``: run the server under uvicorn.

Once listening, one line goes to stdout: ``errdiscount-server listening on URL``
(with ``--port 0`` that is how a supervisor or a test learns the port). Exit codes:
0 clean shutdown, 1 the server could not start, 2 bad flags or settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from errdiscount_sdk import ConfigurationError

from ._app import create_app
from ._settings import Settings, settings_from_args
from .domain._trust import load_or_create_signing_key

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
        "ERRDISCOUNT_EVENT_RETENTION_DAYS": str(settings.event_retention_days),
        "ERRDISCOUNT_ROLLUP_RETENTION_DAYS": str(settings.rollup_retention_days),
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
            _serve_workers(settings)
        else:
            asyncio.run(_serve(settings))
    except ConfigurationError as exc:
        print(f"errdiscount-server: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
