"""`Settings`: everything the server is configured with, from flags or ERRDISCOUNT_* env vars.

Every flag has an environment variable of the same name (``--admin-key`` is
``ERRDISCOUNT_ADMIN_KEY``); a flag wins over its variable. Repeatable flags read a
whitespace-separated list from their variable. Secrets (admin and app keys) are kept
out of reprs and never logged.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from errdiscount_sdk import ConfigurationError

from .web._logging import LOG_FORMATS
from .web._named_keys import NamedKey, parse_named_keys
from .workers._dispatcher import SVIX_SCHEDULE, parse_schedule
from .workers._sinks import WebhookUrlRefused, check_webhook_url, decode_secret

__all__ = ["Settings", "build_arg_parser", "settings_from_args", "worker_environment"]

DEFAULT_DATABASE = "sqlite:///errdiscount.db"
#: request bodies of the public endpoints (the contract's cap)
PUBLIC_BODY_LIMIT = 16 * 1024
#: request bodies of admin endpoints (coupon-code loads are the big ones)
ADMIN_BODY_LIMIT = 1024 * 1024
#: rates and bursts above this are typos (a million per minute per client)
MAX_RATE = 1e9
MAX_WORKERS = 256
#: webhook endpoints given on the command line, at most
MAX_WEBHOOKS = 64
# A CSP source expression without separators that could smuggle another directive.
_FRAME_SOURCE = re.compile(r"'self'|https?://[A-Za-z0-9.\-*]+(:[0-9]{1,5})?")


def _named(attribute: attrs.Attribute[Any]) -> str:
    """The flag of a setting, as the operator typed it (``--rate-ip``)."""
    for flag, _, name, _, _ in _FLAGS:
        if name == attribute.name:
            return flag
    return attribute.name


def _rate(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """A finite number > 0 (``nan`` and ``inf`` pass a bare ``> 0`` check, or fail every one)."""
    if type(value) not in (int, float):
        raise ConfigurationError(f"{_named(attribute)} must be a number")
    if not math.isfinite(value) or not 0 < value <= MAX_RATE:
        raise ConfigurationError(f"{_named(attribute)} must be a finite number > 0 and <= 1e9")


def _burst(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """At least 1: a bucket smaller than one request would refuse every request."""
    _rate(instance, attribute, value)
    if value < 1:
        raise ConfigurationError(f"{_named(attribute)} must be at least 1")


def _days(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= 36500:
        raise ConfigurationError(f"{_named(attribute)} must be 1 to 36500 days")


def _interval(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 86_400:
        raise ConfigurationError("detector interval must be 0 (no loop) to 86400 seconds")


#: ``--auto-compensate``: off (detect only), dry-run (record decisions), on (issue)
AUTO_COMPENSATE_MODES = ("off", "dry-run", "on")


def _auto_compensate(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in AUTO_COMPENSATE_MODES:
        raise ConfigurationError("auto-compensate must be off, dry-run or on")


def _workers(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if type(value) is not int or not 1 <= value <= MAX_WORKERS:
        raise ConfigurationError(f"--workers must be a whole number from 1 to {MAX_WORKERS}")


def _database(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    # Checked here, not only when the store opens, so a typo is a usage error (exit 2).
    # Never echo the URL: it may carry a password.
    if value.startswith(("postgresql://", "postgres://")):
        return
    path = value[len("sqlite:///") :] if value.startswith("sqlite:///") else None
    if path is None:
        raise ConfigurationError("database URL must start with sqlite:/// or postgresql://")
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError("sqlite URL needs a file path (sqlite:///path.db)")


def _schedule(value: Sequence[float] | str) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            return parse_schedule(value)
        except ValueError as exc:
            raise ConfigurationError(f"--webhook-retry-schedule: {exc}") from None
    return tuple(float(step) for step in value)


def _lease(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or not 1 <= value <= 3600:
        raise ConfigurationError("--outbox-lease must be 1 to 3600 seconds")


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
        admin_key: bearer keys of the admin endpoints, each ``NAME=KEY`` or a bare
            ``KEY`` (named ``admin``); the name is the ``actor`` in the ledger. Empty
            disables them (401). A str is read as a whitespace-separated list.
        app_keys: bearer keys of the read endpoints, ``NAME=KEY`` or ``KEY`` (named
            ``app``) of event ingestion (only these) and of the read endpoints (where
            the admin keys work too).
        event_retention_days: raw events older than this are pruned (default 30).
        rollup_retention_days: per-minute rollups older than this are pruned (default
            400; at least ``event_retention_days``).
        outbox_retention_days: outbox events delivered longer ago than this are pruned,
            with their deliveries (default 30; dead letters are kept until requeued).
        daily_rollup_retention_days: per-day rollups (the reports' whole days) older
            than this are pruned (default 1825; at least ``rollup_retention_days``).
        detector_interval: seconds between detector runs (default 30; 0: no loop,
            runs only on ``POST /v1/detector/run``).
        auto_compensate: ``off`` (detect only), ``dry-run`` (default: record the
            decisions, issue nothing) or ``on`` (issue vouchers).
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
        log_format: ``text`` (default) or ``json`` (one object per line, with request ids).
        webhook_urls, webhook_secrets: webhook endpoints, in pairs (the same URL twice
            with two secrets: both sign, for a rotation).
        amqp_url, amqp_exchange: the RabbitMQ sink (durable topic exchange).
        webhook_retry_schedule: seconds between delivery attempts (default: Svix's).
        allow_private_webhooks: allow http and private/loopback webhook addresses.
        dispatch: run the outbox dispatcher inside the server.
        outbox_lease: seconds a claimed event is leased to one dispatcher.
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000)
    database: str = attrs.field(default=DEFAULT_DATABASE, validator=_database)
    signing_key: str | None = None
    trusted_jwks: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    issuer: str = "errdiscount-server"
    audience: str = "errdiscount"
    admin_key: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    app_keys: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    public_url: str | None = None
    frame_ancestors: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    demo: bool = False
    rate_ip_per_minute: float = attrs.field(default=600.0, validator=_rate)
    rate_subject_per_minute: float = attrs.field(default=60.0, validator=_rate)
    rate_burst: float = attrs.field(default=20.0, validator=_burst)
    policy: str | None = None
    access_log: bool = True
    workers: int = attrs.field(default=1, validator=_workers)
    log_format: str = attrs.field(default="text")
    event_retention_days: int = attrs.field(default=30, validator=_days)
    rollup_retention_days: int = attrs.field(default=400, validator=_days)
    outbox_retention_days: int = attrs.field(default=30, validator=_days)
    daily_rollup_retention_days: int = attrs.field(default=1825, validator=_days)
    webhook_urls: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    webhook_secrets: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    amqp_url: str | None = attrs.field(default=None, repr=False)
    amqp_exchange: str = "errdiscount"
    webhook_retry_schedule: tuple[float, ...] = attrs.field(
        default=SVIX_SCHEDULE, converter=_schedule
    )
    allow_private_webhooks: bool = False
    dispatch: bool = True
    outbox_lease: float = attrs.field(default=30.0, validator=_lease)
    detector_interval: float = attrs.field(default=30.0, validator=_interval)
    auto_compensate: str = attrs.field(default="dry-run", validator=_auto_compensate)

    @log_format.validator
    def _check_log_format(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in LOG_FORMATS:
            raise ConfigurationError("log format must be text or json")

    @port.validator
    def _check_port(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= 65535:
            raise ConfigurationError("port must be between 0 and 65535")

    def __attrs_post_init__(self) -> None:
        for name in ("issuer", "audience"):
            value = getattr(self, name)
            if not value or len(value) > 256:
                raise ConfigurationError(f"{name} must be 1 to 256 characters")
        self.admin_keys()
        self.named_app_keys()
        if self.rollup_retention_days > 36_500:
            raise ConfigurationError("rollup retention is at most 36500 days")
        if self.rollup_retention_days < self.event_retention_days:
            raise ConfigurationError("rollup retention must be at least the event retention")
        if self.daily_rollup_retention_days > 36_500:
            raise ConfigurationError("daily rollup retention is at most 36500 days")
        if self.daily_rollup_retention_days < self.rollup_retention_days:
            raise ConfigurationError("daily rollup retention must be at least the rollup retention")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError("CORS origins look like https://example.com")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigurationError("public URL must start with http:// or https://")
        for source in self.frame_ancestors:
            if not _FRAME_SOURCE.fullmatch(source):
                raise ConfigurationError("frame ancestors look like https://shop.example or 'self'")
        self._check_sinks()

    def _check_sinks(self) -> None:
        if len(self.webhook_urls) != len(self.webhook_secrets):
            raise ConfigurationError("give one --webhook-secret per --webhook-url, in order")
        if len(self.webhook_urls) > MAX_WEBHOOKS:
            raise ConfigurationError("at most 64 --webhook-url")
        for url in self.webhook_urls:
            try:
                check_webhook_url(url, allow_private=self.allow_private_webhooks)
            except WebhookUrlRefused as exc:
                raise ConfigurationError(f"--webhook-url: {exc}") from None
        for secret in self.webhook_secrets:
            try:
                decode_secret(secret)
            except ValueError as exc:
                raise ConfigurationError(f"--webhook-secret: {exc}") from None
        if self.amqp_url is not None and not self.amqp_url.startswith(("amqp://", "amqps://")):
            raise ConfigurationError("--amqp-url must start with amqp:// or amqps://")
        if not 0 < len(self.amqp_exchange) <= 255 or any(
            not ("!" <= c <= "~") for c in self.amqp_exchange
        ):
            raise ConfigurationError("--amqp-exchange is 1 to 255 printable ASCII characters")

    def admin_keys(self) -> tuple[NamedKey, ...]:
        """``--admin-key`` entries, named (a bare key is ``admin``)."""
        return parse_named_keys(self.admin_key, default="admin", what="--admin-key")

    def named_app_keys(self) -> tuple[NamedKey, ...]:
        """``--app-key`` entries, named (a bare key is ``app``)."""
        return parse_named_keys(self.app_keys, default="app", what="--app-key")


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
    (
        "--admin-key",
        "ADMIN_KEY",
        "admin_key",
        "list",
        "admin bearer key, NAME=KEY or KEY (named admin); the ledger's actor (repeatable)",
    ),
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
    ("--log-format", "LOG_FORMAT", "log_format", "str", "text (default) or json"),
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
    (
        "--outbox-retention-days",
        "OUTBOX_RETENTION_DAYS",
        "outbox_retention_days",
        "int",
        "days delivered outbox events are kept (default 30; dead letters until requeued)",
    ),
    (
        "--daily-rollup-retention-days",
        "DAILY_ROLLUP_RETENTION_DAYS",
        "daily_rollup_retention_days",
        "int",
        "days per-day event rollups (reports) are kept (default 1825)",
    ),
    ("--webhook-url", "WEBHOOK_URL", "webhook_urls", "list", "webhook endpoint (repeatable)"),
    (
        "--webhook-secret",
        "WEBHOOK_SECRET",
        "webhook_secrets",
        "list",
        "whsec_ secret of the --webhook-url at the same position (repeatable)",
    ),
    ("--amqp-url", "AMQP_URL", "amqp_url", "str", "RabbitMQ URL (amqp://...) of the event sink"),
    ("--amqp-exchange", "AMQP_EXCHANGE", "amqp_exchange", "str", "topic exchange (errdiscount)"),
    (
        "--webhook-retry-schedule",
        "WEBHOOK_RETRY_SCHEDULE",
        "webhook_retry_schedule",
        "csv",
        "seconds between delivery attempts (default 5,300,1800,7200,18000,36000,36000)",
    ),
    ("--outbox-lease", "OUTBOX_LEASE", "outbox_lease", "float", "lease of a claimed event (30 s)"),
    (
        "--detector-interval",
        "DETECTOR_INTERVAL",
        "detector_interval",
        "float",
        "seconds between detector runs (default 30; 0: only POST /v1/detector/run)",
    ),
    (
        "--auto-compensate",
        "AUTO_COMPENSATE",
        "auto_compensate",
        "str",
        "off, dry-run (default: record decisions, issue nothing) or on",
    ),
)


# Settings with no value-taking flag of their own (store_const flags), for the env table.
_SWITCHES: tuple[tuple[str, str, str, str, str], ...] = (
    ("", "ACCESS_LOG", "access_log", "bool", ""),
    ("", "DEMO", "demo", "bool", ""),
    ("", "ALLOW_PRIVATE_WEBHOOKS", "allow_private_webhooks", "bool", ""),
    ("", "DISPATCH", "dispatch", "bool", ""),
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
    parser.add_argument(
        "--allow-private-webhooks",
        dest="allow_private_webhooks",
        action="store_const",
        const="1",
        help="allow http and private, loopback and link-local webhook addresses (tests, "
        "private networks) [env ERRDISCOUNT_ALLOW_PRIVATE_WEBHOOKS=1]",
    )
    parser.add_argument(
        "--no-dispatch",
        dest="dispatch",
        action="store_const",
        const="0",
        help="do not deliver the outbox from this server (run errdiscount-server dispatch) "
        "[env ERRDISCOUNT_DISPATCH=0]",
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
    for flag, suffix, attribute, kind, _ in (*_FLAGS, *_SWITCHES):
        given = getattr(args, attribute, None)
        raw = given if given is not None else env.get(f"ERRDISCOUNT_{suffix}")
        if raw is None or raw == "":
            continue
        values[attribute] = _convert(kind, flag or "access log", raw)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except TypeError as exc:  # pragma: no cover - the table above matches the fields
        raise ConfigurationError(str(exc)) from None


def worker_environment(settings: Settings) -> dict[str, str]:
    """The ERRDISCOUNT_* variables from which `settings_from_args` rebuilds ``settings``.

    Worker processes (``--workers N``) are started by uvicorn and read their settings
    from the environment; this is the exact inverse of `settings_from_args`, made from
    the same table, so every setting reaches every worker. A setting that is None is
    forwarded as empty (unset), so no stale variable of the parent's environment wins.

    Raises:
        ConfigurationError: a list item holds whitespace (a list variable is
            whitespace-separated, so it could not be forwarded intact).
    """
    env: dict[str, str] = {}
    for _, suffix, attribute, kind, _ in (*_FLAGS, *_SWITCHES):
        value = getattr(settings, attribute)
        name = f"ERRDISCOUNT_{suffix}"
        if value is None:
            env[name] = ""
        elif kind == "list":
            if any(not item or any(c.isspace() for c in item) for item in value):
                raise ConfigurationError(
                    f"--workers cannot forward a {suffix.lower()} value with whitespace"
                )
            env[name] = " ".join(value)
        elif kind == "bool":
            env[name] = "1" if value else "0"
        elif kind == "csv":
            env[name] = ",".join(repr(float(step)) for step in value)
        else:
            env[name] = repr(value) if kind == "float" else str(value)
    return env
