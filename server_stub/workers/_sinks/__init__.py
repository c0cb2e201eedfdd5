"""Where outbox events go: Standard Webhooks endpoints and a RabbitMQ exchange."""

from ._base import Delivered, Failed, Gone, Sink, SinkOutcome
from ._webhook import (
    WebhookSink,
    WebhookUrlRefused,
    check_webhook_url,
    decode_secret,
    sign,
)

__all__ = [
    "Delivered",
    "Failed",
    "Gone",
    "Sink",
    "SinkOutcome",
    "WebhookSink",
    "WebhookUrlRefused",
    "check_webhook_url",
    "decode_secret",
    "sign",
]
