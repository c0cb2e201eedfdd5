"""The wire contract between apps, providers and the errdiscount server: one definition each.

Every name that crosses a process boundary — payload members, error codes, header names,
size caps — is defined here and imported by the SDK and by `server_stub` (through the
public `errdiscount_sdk.wire`). A value written twice drifts; a value written once cannot.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERT_URL",
    "APP_KEY_SCHEME",
    "BATCH_DROPPED",
    "BATCH_EVENTS",
    "BATCH_SCHEMA_VERSION",
    "CATEGORY",
    "DISCOUNT_TOKEN",
    "ERROR_CODE",
    "EVENTS_PATH",
    "EVENT_TYPES",
    "GRANT_DELIVERED",
    "GRANT_PENDING",
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENT_REPLAYED_HEADER",
    "INTERNAL_ERROR",
    "MAX_BATCH_BYTES",
    "MAX_EVENTS_PER_BATCH",
    "MAX_EVENT_PAYLOAD_BYTES",
    "MAX_JWKS_BYTES",
    "MAX_KID_CHARS",
    "MAX_REPORT_POINTS",
    "MAX_REPORT_TOP",
    "MAX_TOKEN_BYTES",
    "MESSAGE",
    "PAYLOAD_MEMBERS",
    "PROBLEM_JSON",
    "REDEMPTION_ERROR_CODES",
    "REPORT_DIMENSIONS",
    "REQUEST_ID_HEADER",
    "RETRY_AFTER_HEADER",
    "SESSION_TOKEN_PREFIX",
    "STATED_CATEGORIES",
    "SUGGESTION",
    "TRACES_PATH",
    "WEBHOOK_ID_HEADER",
    "WEBHOOK_SECRET_PREFIX",
    "WEBHOOK_SIGNATURE_HEADER",
    "WEBHOOK_TIMESTAMP_HEADER",
    "EventType",
    "RedemptionCode",
]

# -- the seed payload: what a failing API answers -------------------------------------------
ERROR_CODE: Final = "error_code"
MESSAGE: Final = "message"
SUGGESTION: Final = "suggestion"
DISCOUNT_TOKEN: Final = "discount_token"
ALERT_URL: Final = "alert_url"
PAYLOAD_MEMBERS: Final = (ERROR_CODE, MESSAGE, SUGGESTION, DISCOUNT_TOKEN, ALERT_URL)
CATEGORY: Final = "category"
"""Optional payload member: the provider states the failure's category itself (our
provider middleware always does). Its values are `STATED_CATEGORIES`."""
STATED_CATEGORIES: Final = frozenset({"network", "protocol", "business", "data_format"})
"""The values of ``category``: `ErrorCategory`'s values (``data-format`` and other
spellings are normalised by the parser)."""
INTERNAL_ERROR: Final = "INTERNAL_ERROR"
"""The ``error_code`` of the middleware's answer to an unhandled exception (HTTP 500)."""
PROBLEM_JSON: Final = "application/problem+json"
"""The RFC 9457 media type; the middleware answers with it when the client's Accept prefers it."""

# -- headers -------------------------------------------------------------------------------
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
IDEMPOTENT_REPLAYED_HEADER: Final = "Idempotent-Replayed"
RETRY_AFTER_HEADER: Final = "Retry-After"
REQUEST_ID_HEADER: Final = "X-Request-Id"
APP_KEY_SCHEME: Final = "Bearer"


# -- events: the outbox, webhooks (Standard Webhooks) and the message queue ----------------
class EventType:
    """The ``type`` of an outbox event (webhook payload ``type``, AMQP routing key)."""

    COMPENSATION_ISSUED: Final = "compensation.issued"
    COMPENSATION_REDEEMED: Final = "compensation.redeemed"
    COMPENSATION_REVERSED: Final = "compensation.reversed"
    INCIDENT_OPENED: Final = "incident.opened"
    INCIDENT_CLOSED: Final = "incident.closed"


EVENT_TYPES: Final = frozenset(value for name, value in vars(EventType).items() if name.isupper())
WEBHOOK_ID_HEADER: Final = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER: Final = "webhook-signature"
WEBHOOK_SECRET_PREFIX: Final = "whsec_"
MAX_EVENT_PAYLOAD_BYTES: Final = 20 * 1024
"""An event's JSON payload is at most this many bytes (Standard Webhooks: under 20 KB)."""
SESSION_TOKEN_PREFIX: Final = "ses1."
"""Browser session tokens (``POST /v1/sessions``) start with this; never a JWS, never a voucher."""
GRANT_DELIVERED: Final = "delivered"
"""``grant_delivery``: a sink acknowledged the redemption, or the grant is the server's own."""
GRANT_PENDING: Final = "pending"
"""``grant_delivery`` value: the redemption is not acknowledged yet ("will be credited shortly")."""

# -- size caps -----------------------------------------------------------------------------
MAX_TOKEN_BYTES: Final = 8 * 1024
"""A compact discount token is refused, unparsed, above this size (token spec §2)."""
MAX_JWKS_BYTES: Final = 64 * 1024
"""A JWKS document is refused above this size."""

MAX_KID_CHARS: Final = 128
"""A key id (``kid``) is 1 to this many characters, in tokens, JWKS and key files."""

# -- event ingestion (docs/events.md) ----------------------------------------------------
EVENTS_PATH: Final = "/v1/events"
"""Where reporters POST batches of events (and where GET lists them)."""
TRACES_PATH: Final = "/v1/traces"
"""The server's OTLP/HTTP traces receiver."""
BATCH_EVENTS: Final = "events"
BATCH_DROPPED: Final = "dropped"
BATCH_SCHEMA_VERSION: Final = "schema_version"
"""The members of a POST /v1/events body: the events, the sender's loss counters, and
the event schema version."""
MAX_EVENTS_PER_BATCH: Final = 1000
"""Events in one POST /v1/events body: the server refuses more (413); a reporter's
``batch_size`` cannot exceed it."""
MAX_BATCH_BYTES: Final = 1024 * 1024
"""One POST /v1/events body, as sent and after gzip decompression: the server refuses
more (413); a reporter builds its batches well under it."""

# -- reports (docs/analytics.md) ---------------------------------------------------------
REPORT_DIMENSIONS: Final = (
    "platform",
    "os_version",
    "app_version",
    "sdk_version",
    "endpoint",
    "error_code",
    "category",
)
"""The dimensions of GET /v1/reports/breakdown, in the order of its all-dimensions answer."""
MAX_REPORT_TOP: Final = 100
"""Values per breakdown (the ``top`` parameter's maximum)."""
MAX_REPORT_POINTS: Final = 2000
"""Points of one GET /v1/reports/timeseries answer."""


class RedemptionCode:
    """The ``error_code`` values of the redemption API (docs/redemption.md).

    ``TOKEN_*`` codes not listed here are ``"TOKEN_" + TokenError.reason.upper()``.
    """

    TOKEN_PREFIX: Final = "TOKEN_"
    ALREADY_REDEEMED: Final = "TOKEN_ALREADY_REDEEMED"
    KEYS_UNAVAILABLE: Final = "TOKEN_KEYS_UNAVAILABLE"
    BUDGET_EXHAUSTED: Final = "BUDGET_EXHAUSTED"
    INVENTORY_EXHAUSTED: Final = "INVENTORY_EXHAUSTED"
    USER_CAP_REACHED: Final = "USER_CAP_REACHED"
    IDEMPOTENCY_KEY_IN_FLIGHT: Final = "IDEMPOTENCY_KEY_IN_FLIGHT"
    IDEMPOTENCY_KEY_REUSED: Final = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_INVALID: Final = "IDEMPOTENCY_KEY_INVALID"
    REDEMPTION_NOT_FOUND: Final = "REDEMPTION_NOT_FOUND"
    SUBJECT_NOT_FOUND: Final = "SUBJECT_NOT_FOUND"
    RATE_LIMITED: Final = "RATE_LIMITED"


REDEMPTION_ERROR_CODES: Final = frozenset(
    value
    for name, value in vars(RedemptionCode).items()
    if name.isupper() and name != "TOKEN_PREFIX"
)
