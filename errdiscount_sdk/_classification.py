"""The value `classify` returns: what kind of failure, how bad, and whether to retry."""

from __future__ import annotations

import attrs

from ._models import ErrorCategory, Severity

__all__ = ["Classification"]


@attrs.frozen
class Classification:
    """How one failed attempt is classified.

    Attributes:
        category: which of the four kinds of API error this is.
        severity: how badly it hurts the user.
        transient: the same request may succeed if tried again.
        retryable: trying again is also *safe*: transient, and the request is
            idempotent (by method or ``Idempotency-Key``) or never reached the server.
        error_type: a low-cardinality identifier, usable as OpenTelemetry's
            ``error.type`` (e.g. ``"read_timeout"``, ``"503"``, ``"business_error"``).
        description: one sentence a human understands (no secrets, no body text).
        status_code: the HTTP status, or None when no response arrived.
        retry_after: seconds the server asked to wait (``Retry-After``), or None.
        request_sent: False when the failure certainly happened before any byte of
            the request reached the server (DNS, connect); True otherwise.
    """

    category: ErrorCategory
    severity: Severity
    transient: bool
    retryable: bool
    error_type: str
    description: str
    status_code: int | None = None
    retry_after: float | None = None
    request_sent: bool = True
