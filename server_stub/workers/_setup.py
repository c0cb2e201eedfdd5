"""Build the dispatcher and its configured sinks from `Settings`."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from server_stub.store import Store

from .._settings import Settings
from ._dispatcher import DispatchConfig, Dispatcher
from ._sinks import Sink, WebhookSink
from ._sinks._amqp import AmqpSink

__all__ = ["build_dispatcher", "configured_sinks"]


def _flag_sink_id(url: str) -> str:
    """Stable across restarts and replicas: the same URL is the same sink."""
    return "cfg_" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:20]


def configured_sinks(settings: Settings) -> list[Sink]:
    """The flag-configured sinks; one webhook sink per URL, with all its secrets."""
    secrets: dict[str, list[str]] = {}
    for url, secret in zip(settings.webhook_urls, settings.webhook_secrets, strict=True):
        secrets.setdefault(url, []).append(secret)
    sinks: list[Sink] = [
        WebhookSink(_flag_sink_id(url), url, keys, allow_private=settings.allow_private_webhooks)
        for url, keys in secrets.items()
    ]
    if settings.amqp_url is not None:
        sinks.append(AmqpSink(settings.amqp_url, settings.amqp_exchange))
    return sinks


def build_dispatcher(settings: Settings, store: Callable[[], Store]) -> Dispatcher:
    return Dispatcher(
        store,
        configured_sinks(settings),
        config=DispatchConfig(
            schedule=settings.webhook_retry_schedule,
            lease=dt.timedelta(seconds=settings.outbox_lease),
            allow_private_webhooks=settings.allow_private_webhooks,
        ),
    )
