"""Helpers for the server tests: settings, tokens, and server processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from errdiscount_sdk import SigningKey, TokenIssuer, generate_signing_key
from server_stub import Settings, create_app
from tests.support.server import serve

ADMIN_KEY = "admin-key-0123456789abcdef"
APP_KEY = "app-key-0123456789abcdef"
ISSUER = "errdiscount-server"
AUDIENCE = "errdiscount"
ORIGIN = "https://shop.example"
ROOT = Path(__file__).resolve().parents[2]

_KEY: list[SigningKey] = []


def shared_key() -> SigningKey:
    if not _KEY:
        _KEY.append(generate_signing_key())
    return _KEY[0]


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path}/server.db",
        "admin_key": ADMIN_KEY,
        "app_keys": (APP_KEY,),
        "cors_origins": (ORIGIN,),
        "rate_ip_per_minute": 60_000.0,
        "rate_subject_per_minute": 60_000.0,
        "rate_burst": 1000.0,
        "access_log": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running(tmp_path: Path, **overrides: Any) -> Iterator[str]:
    """A real server (uvicorn thread) on a fresh SQLite file, signing with `shared_key`."""
    app = create_app(settings(tmp_path, **overrides), signing_key=shared_key())
    with serve(app) as url:
        yield url


def issuer(key: SigningKey | None = None, **kwargs: Any) -> TokenIssuer:
    return TokenIssuer(key or shared_key(), issuer=ISSUER, audience=AUDIENCE, **kwargs)


def token(subject: str = "alice", **kwargs: Any) -> str:
    fields: dict[str, Any] = {
        "error_code": "PAY_001",
        "category": "business",
        "severity": "moderate",
        "compensation": {"kind": "points", "amount": 100, "unit": "points"},
    }
    fields.update(kwargs)
    make = fields.pop("issuer", None) or issuer()
    return str(make.issue(subject=subject, **fields))


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


class ServerProcess:
    """``python -m server_stub --port 0`` in a subprocess; learns its URL from stdout."""

    def __init__(self, database: str, key_path: Path, *extra: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.args = [
            sys.executable,
            "-m",
            "server_stub",
            "--port",
            "0",
            "--database",
            database,
            "--signing-key",
            str(key_path),
            "--admin-key",
            ADMIN_KEY,
            "--rate-ip",
            "1000000",
            "--rate-subject",
            "1000000",
            "--rate-burst",
            "100000",
            "--no-access-log",
            *extra,
        ]
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if "listening on " in line:
                return line.split("listening on ", 1)[1].split()[0]
        self.process.kill()
        raise RuntimeError("server process did not start")

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup, no graceful shutdown
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
