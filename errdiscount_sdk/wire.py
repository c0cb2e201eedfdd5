"""The wire contract (payload members, error codes, header names, size caps), public.

For servers and tools that speak errdiscount's protocol: `server_stub` imports these,
so the SDK and the server can never disagree on a name or a cap.
"""

from ._model.wire import (
    ALERT_URL,
    APP_KEY_SCHEME,
    CATEGORY,
    DISCOUNT_TOKEN,
    ERROR_CODE,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER,
    MAX_JWKS_BYTES,
    MAX_KID_CHARS,
    MAX_TOKEN_BYTES,
    MESSAGE,
    PAYLOAD_MEMBERS,
    PROBLEM_JSON,
    REDEMPTION_ERROR_CODES,
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    STATED_CATEGORIES,
    SUGGESTION,
    RedemptionCode,
)

__all__ = [
    "ALERT_URL",
    "APP_KEY_SCHEME",
    "CATEGORY",
    "DISCOUNT_TOKEN",
    "ERROR_CODE",
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENT_REPLAYED_HEADER",
    "MAX_JWKS_BYTES",
    "MAX_KID_CHARS",
    "MAX_TOKEN_BYTES",
    "MESSAGE",
    "PAYLOAD_MEMBERS",
    "PROBLEM_JSON",
    "REDEMPTION_ERROR_CODES",
    "REQUEST_ID_HEADER",
    "RETRY_AFTER_HEADER",
    "STATED_CATEGORIES",
    "SUGGESTION",
    "RedemptionCode",
]
