"""The small vocabularies every other module speaks: error category, severity, retry stops."""

from __future__ import annotations

import enum

__all__ = ["ErrorCategory", "RetryStop", "Severity"]


class ErrorCategory(enum.StrEnum):
    """Where an API failure comes from (the seed's four kinds of API error).

    - ``NETWORK``: no usable HTTP exchange happened (DNS, connect, timeouts, resets).
    - ``PROTOCOL``: an HTTP exchange happened and its status says it failed
      (403, 404, 5xx, ...), with no business code in the body.
    - ``BUSINESS``: the server understood the request and refused it for a
      business reason it names in a structured payload (``error_code``).
    - ``DATA_FORMAT``: a body that could not be parsed where one was expected,
      or a request the server rejected as malformed.
    """

    NETWORK = "network"
    PROTOCOL = "protocol"
    BUSINESS = "business"
    DATA_FORMAT = "data_format"


class Severity(enum.StrEnum):
    """How badly the failure hurts the user (the seed's graded compensation).

    - ``MINOR``: one operation failed; trying again or later is likely to work.
    - ``MODERATE``: a core function is blocked for this user until something changes.
    - ``SEVERE``: the service is down or broken for everyone.
    """

    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"


class RetryStop(enum.StrEnum):
    """Why a client made no further attempt (``ApiError.retry_stopped_by``).

    - ``RETRIES_DISABLED``: the client has no `RetryPolicy` (``retry=None``).
    - ``NOT_RETRYABLE``: the failure is not transient, or ``retry_on`` refused it.
    - ``UNSAFE_RESEND``: the request may have reached the server and resending
      it could apply it twice (a POST/PATCH without an opt-in; see docs/retry.md).
    - ``ONE_SHOT_BODY``: the body was a generator or stream already consumed.
    - ``MAX_ATTEMPTS``: the policy's ``max_attempts`` were made.
    - ``RETRY_AFTER_TOO_LONG``: the server asked to wait longer than allowed.
    - ``DEADLINE``: the next attempt could not end before the policy's deadline.
    - ``BUDGET``: the `RetryBudget` could not pay for another retry.
    """

    RETRIES_DISABLED = "retries_disabled"
    NOT_RETRYABLE = "not_retryable"
    UNSAFE_RESEND = "unsafe_resend"
    ONE_SHOT_BODY = "one_shot_body"
    MAX_ATTEMPTS = "max_attempts"
    RETRY_AFTER_TOO_LONG = "retry_after_too_long"
    DEADLINE = "deadline"
    BUDGET = "budget"
