"""`Settings`: everything the server is configured with, from flags or ERRDISCOUNT_* env vars.

Every flag has an environment variable of the same name (``--admin-key`` is
``ERRDISCOUNT_ADMIN_KEY``); a flag wins over its variable. Repeatable flags read a
whitespace-separated list from their variable. Secrets (admin and app keys) are kept
out of reprs and never logged.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from errdiscount_sdk import ConfigurationError

from .web._app_keys import parse_app_keys

__all__ = ["Settings", "build_arg_parser", "settings_from_args"]

DEFAULT_DATABASE = "sqlite:///errdiscount.db"
#: request bodies of the public endpoints (the contract's cap)
PUBLIC_BODY_LIMIT = 16 * 1024
#: request bodies of admin endpoints (coupon-code loads are the big ones)
ADMIN_BODY_LIMIT = 1024 * 1024
# A CSP source expression without separators that could smuggle another directive.
_FRAME_SOURCE = re.compile(r"'self'|https?://[A-Za-z0-9.\-*]+(:[0-9]{1,5})?")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name} must be positive")


def _tuple(value: Sequence[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(value)


@attrs.frozen
class Settings:
    """The server's configuration (see docs/server.md for each field).

    Attributes:
        host, port: where to listen (port 0: any free port).
        database: ``sqlite:///path.db`` or ``postgresql://...``.
        signing_key: PEM path of the server's key; generated (mode 0600) if missing.
            None: an ephemeral key (tests and embedding only).
        trusted_jwks: ``PATH_OR_URL`` (more keys of ``issuer``) or
            ``ISSUER|PATH_OR_URL`` (another issuer's keys).
        issuer, audience: the ``iss`` the server signs with; the ``aud`` it accepts.
        admin_key: bearer key of the admin endpoints; None disables them (401).
        app_keys: bearer keys, ``KEY`` or ``NAME=KEY``, of event ingestion (only these)
            and of the read endpoints (where the admin key works too).
        event_retention_days: raw events older than this are pruned (default 30).
        rollup_retention_days: per-minute rollups older than this are pruned (default
            400; at least ``event_retention_days``).
        cors_origins: browser origins allowed to call the public endpoints.
        public_url: base URL for ``alert_url`` values; None: the request's own base URL.
        frame_ancestors: CSP ``frame-ancestors`` sources of the alert and demo pages
            (empty: they may not be framed).
        demo: serve the demo shop at /demo (it mints real tokens: development only).
        rate_ip_per_minute, rate_subject_per_minute: sustained redemption rates.
        rate_burst: bucket size of both limiters.
        policy: CompensationPolicy file (.toml/.json); None: the default policy.
        access_log: log every request (uvicorn's access log).
        workers: server processes (uvicorn workers) sharing the port.
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000)
    database: str = DEFAULT_DATABASE
    signing_key: str | None = None
    trusted_jwks: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    issuer: str = "errdiscount-server"
    audience: str = "errdiscount"
    admin_key: str | None = attrs.field(default=None, repr=False)
    app_keys: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    public_url: str | None = None
    frame_ancestors: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    demo: bool = False
    rate_ip_per_minute: float = attrs.field(default=600.0, validator=_positive)
    rate_subject_per_minute: float = attrs.field(default=60.0, validator=_positive)
    rate_burst: float = attrs.field(default=20.0, validator=_positive)
    policy: str | None = None
    access_log: bool = True
    workers: int = attrs.field(default=1, validator=_positive)
    event_retention_days: int = attrs.field(default=30, validator=_positive)
    rollup_retention_days: int = attrs.field(default=400, validator=_positive)

    @port.validator
    def _check_port(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= 65535:
            raise ConfigurationError("port must be between 0 and 65535")

    def __attrs_post_init__(self) -> None:
        for name in ("issuer", "audience"):
            value = getattr(self, name)
            if not value or len(value) > 256:
                raise ConfigurationError(f"{name} must be 1 to 256 characters")
        if self.admin_key is not None and len(self.admin_key) < 16:
            raise ConfigurationError("admin key must be at least 16 characters")
        parse_app_keys(self.app_keys)  # NAME=KEY or KEY; raises ConfigurationError
        if self.rollup_retention_days > 36_500:
            raise ConfigurationError("rollup retention is at most 36500 days")
        if self.rollup_retention_days < self.event_retention_days:
            raise ConfigurationError("rollup retention must be at least the event retention")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError("CORS origins look like https://example.com")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigurationError("public URL must start with http:// or https://")
        for source in self.frame_ancestors:
            if not _FRAME_SOURCE.fullmatch(source):
                raise ConfigurationError("frame ancestors look like https://shop.example or 'self'")


# (flag, env suffix, attribute, kind, help); kind: str/int/float/list/bool
_FLAGS: tuple[tuple[str, str, str, str, str], ...] = (
    ("--host", "HOST", "host", "str", "interface to listen on (default 127.0.0.1)"),
    ("--port", "PORT", "port", "int", "port (default 8000; 0 picks a free one)"),
    ("--database", "DATABASE", "database", "str", f"database URL (default {DEFAULT_DATABASE})"),
    ("--signing-key", "SIGNING_KEY", "signing_key", "str", "PEM key file; created if missing"),
    (
        "--trusted-jwks",
        "TRUSTED_JWKS",
        "trusted_jwks",
        "list",
        "more trusted keys: PATH_OR_URL, or ISSUER|PATH_OR_URL (repeatable)",
    ),
    ("--issuer", "ISSUER", "issuer", "str", "iss of issued tokens (default errdiscount-server)"),
    ("--audience", "AUDIENCE", "audience", "str", "aud accepted and issued (default errdiscount)"),
    ("--admin-key", "ADMIN_KEY", "admin_key", "str", "bearer key of the admin endpoints"),
    (
        "--app-key",
        "APP_KEY",
        "app_keys",
        "list",
        "KEY or NAME=KEY: bearer key of event ingestion and the read endpoints (repeatable)",
    ),
    ("--cors-origin", "CORS_ORIGIN", "cors_origins", "list", "allowed browser origin (repeatable)"),
    ("--public-url", "PUBLIC_URL", "public_url", "str", "base URL used in alert_url values"),
    ("--rate-ip", "RATE_IP", "rate_ip_per_minute", "float", "redemptions/minute per client IP"),
    (
        "--rate-subject",
        "RATE_SUBJECT",
        "rate_subject_per_minute",
        "float",
        "redemptions/minute per subject",
    ),
    ("--rate-burst", "RATE_BURST", "rate_burst", "float", "burst size of the rate limits"),
    ("--policy", "POLICY", "policy", "str", "CompensationPolicy file (.toml or .json)"),
    (
        "--frame-ancestor",
        "FRAME_ANCESTORS",
        "frame_ancestors",
        "list",
        "origin allowed to frame the alert pages (repeatable; default none)",
    ),
    ("--workers", "WORKERS", "workers", "int", "server processes (default 1)"),
    (
        "--event-retention-days",
        "EVENT_RETENTION_DAYS",
        "event_retention_days",
        "int",
        "days raw call events are kept (default 30)",
    ),
    (
        "--rollup-retention-days",
        "ROLLUP_RETENTION_DAYS",
        "rollup_retention_days",
        "int",
        "days per-minute event rollups are kept (default 400)",
    ),
)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errdiscount-server",
        description="The errdiscount redemption server. Every flag also reads ERRDISCOUNT_<NAME>.",
    )
    for flag, env, attribute, kind, text in _FLAGS:
        help_text = f"{text} [env ERRDISCOUNT_{env}]"
        if kind == "list":
            parser.add_argument(flag, dest=attribute, action="append", help=help_text)
        else:
            parser.add_argument(flag, dest=attribute, help=help_text)
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_const",
        const="0",
        help="do not log each request [env ERRDISCOUNT_ACCESS_LOG=0]",
    )
    parser.add_argument(
        "--demo",
        dest="demo",
        action="store_const",
        const="1",
        help="serve the demo shop at /demo; it mints real tokens [env ERRDISCOUNT_DEMO=1]",
    )
    return parser


def _convert(kind: str, name: str, value: str | list[str]) -> object:
    if kind == "list":
        return tuple(value) if isinstance(value, list) else tuple(value.split())
    assert isinstance(value, str)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number") from None
    if kind == "bool":
        return value.strip().lower() not in ("0", "false", "no", "off")
    return value


def settings_from_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build `Settings` from command-line flags, then ERRDISCOUNT_* variables, then defaults.

    Raises:
        ConfigurationError: a value is out of range.
        SystemExit: argparse's usage errors (exit 2), as every CLI does.
    """
    env = os.environ if environ is None else environ
    args = build_arg_parser().parse_args(argv)
    values: dict[str, object] = {}
    for flag, suffix, attribute, kind, _ in (
        *_FLAGS,
        ("", "ACCESS_LOG", "access_log", "bool", ""),
        ("", "DEMO", "demo", "bool", ""),
    ):
        given = getattr(args, attribute, None)
        raw = given if given is not None else env.get(f"ERRDISCOUNT_{suffix}")
        if raw is None or raw == "":
            continue
        values[attribute] = _convert(kind, flag or "access log", raw)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except TypeError as exc:  # pragma: no cover - the table above matches the fields
        raise ConfigurationError(str(exc)) from None
