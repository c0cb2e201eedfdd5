"""`classify`: turn an httpx exception or a failing response into a `Classification`.

The rules are documented as a table in docs/errors.md; keep the two in step.
httpx is imported only for type checks: this module never sends anything.
"""

from __future__ import annotations

import re
import socket
import ssl

import attrs
import httpx

from .enums import ErrorCategory, Severity
from .errors import ApiError, error_class_for
from .payload import ErrorPayload
from .retry_after import parse_retry_after
from .wire import IDEMPOTENCY_KEY_HEADER

__all__ = ["IDEMPOTENT_METHODS", "Classification", "build_error", "classify", "is_safe_to_retry"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# 400/422 bodies that say the *request* was malformed, not refused for a business reason.
_MALFORMED_HINT = re.compile(
    r"pars(e|ing)|malformed|syntax|json|invalid[ _-]?(format|data|body|argument|input|type)"
    r"|not (a )?valid|validation|unprocessable|type_error|missing[ _-]?field|required field"
    r"|bad[ _-]?request|wrong type",
    re.IGNORECASE,
)
# Statuses whose meaning the status alone fixes, whatever code the body names.
_STATUS_OWNS_MEANING = frozenset({401, 403, 404, 405, 406, 408, 413, 414, 415, 429, 431})
_DNS_HINTS = (
    "name or service not known",
    "nodename nor servname",
    "no address associated",
    "getaddrinfo failed",
    "temporary failure in name resolution",
    "name resolution",
)


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


def is_safe_to_retry(request: httpx.Request | None, *, request_sent: bool) -> bool:
    """True when repeating ``request`` cannot apply its effect twice.

    Safe: the request never left the client, its method is idempotent
    (GET, HEAD, OPTIONS, PUT, DELETE, TRACE), or it carries an ``Idempotency-Key``.
    """
    if not request_sent:
        return True
    if request is None:
        return False
    return request.method.upper() in IDEMPOTENT_METHODS or (
        IDEMPOTENCY_KEY_HEADER in request.headers
    )


def classify(
    failure: httpx.Response | BaseException,
    *,
    payload: ErrorPayload | None = None,
    request: httpx.Request | None = None,
    invalid_body: bool = False,
) -> Classification:
    """Classify one failed attempt.

    Args:
        failure: an `httpx.Response` with a failing status (or a success whose
            body could not be parsed, with ``invalid_body=True``), or the
            exception httpx raised.
        payload: the parsed error payload, if any (`parse_error_payload`).
        request: the request, when ``failure`` does not carry it.
        invalid_body: the response body was expected to be JSON (or to pass a
            validator) and was not: classify as a data-format error.

    Returns:
        A frozen `Classification`; never raises for any exception or response.
    """
    if isinstance(failure, httpx.Response):
        request = request or _request_of(failure)
        if invalid_body:
            return _invalid_body(failure, request)
        return _classify_status(failure, payload, request)
    if request is None and isinstance(failure, httpx.RequestError):
        request = _request_of(failure)
    return _classify_exception(failure, request)


def build_error(
    failure: httpx.Response | BaseException,
    *,
    payload: ErrorPayload | None = None,
    request: httpx.Request | None = None,
    invalid_body: bool = False,
    attempts: int = 1,
) -> ApiError:
    """Classify ``failure`` and build the matching `ApiError` subclass (not raised)."""
    classification = classify(failure, payload=payload, request=request, invalid_body=invalid_body)
    response = failure if isinstance(failure, httpx.Response) else None
    if request is None:
        request = (
            _request_of(response)
            if response is not None
            else _request_of(failure)
            if isinstance(failure, httpx.RequestError)
            else None
        )
    error_class = error_class_for(classification)
    error = error_class(
        _message(classification, request, payload),
        classification=classification,
        request=request,
        response=response,
        payload=payload,
        attempts=attempts,
    )
    if isinstance(failure, BaseException):
        error.__cause__ = failure
    return error


def _request_of(source: httpx.Response | httpx.RequestError) -> httpx.Request | None:
    try:
        return source.request
    except RuntimeError:  # httpx raises when no request is attached
        return None


def _message(
    classification: Classification, request: httpx.Request | None, payload: ErrorPayload | None
) -> str:
    where = ""
    if request is not None:
        # Never the query string: it often carries keys or personal data.
        url = request.url.copy_with(query=None, fragment=None)
        where = f" ({request.method} {url})"
    text = classification.description + where
    if payload is not None and (payload.error_code or payload.message):
        said = ": ".join(part for part in (payload.error_code, payload.message) if part)
        text += f"; the server says: {said}"
        if payload.suggestion:
            text += f". Suggestion: {payload.suggestion}"
    return text


def _make(
    category: ErrorCategory,
    severity: Severity,
    *,
    transient: bool,
    error_type: str,
    description: str,
    request: httpx.Request | None,
    status_code: int | None = None,
    retry_after: float | None = None,
    request_sent: bool = True,
) -> Classification:
    return Classification(
        category=category,
        severity=severity,
        transient=transient,
        retryable=transient and is_safe_to_retry(request, request_sent=request_sent),
        error_type=error_type,
        description=description,
        status_code=status_code,
        retry_after=retry_after,
        request_sent=request_sent,
    )


def _invalid_body(response: httpx.Response, request: httpx.Request | None) -> Classification:
    return _make(
        ErrorCategory.DATA_FORMAT,
        Severity.MODERATE,
        transient=False,
        error_type="invalid_response_body",
        description=(
            f"Invalid data format: the HTTP {response.status_code} response body could not "
            "be parsed or failed validation"
        ),
        request=request,
        status_code=response.status_code,
    )


def _classify_status(
    response: httpx.Response, payload: ErrorPayload | None, request: httpx.Request | None
) -> Classification:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None and payload is not None:
        retry_after = payload.retry_after
    code = payload.error_code if payload is not None else None

    def protocol(severity: Severity, transient: bool, description: str) -> Classification:
        return _make(
            ErrorCategory.PROTOCOL,
            severity,
            transient=transient,
            error_type=str(status),
            description=description,
            request=request,
            status_code=status,
            retry_after=retry_after,
        )

    if status in (400, 422) and payload is not None and _says_malformed(payload):
        return _make(
            ErrorCategory.DATA_FORMAT,
            Severity.MINOR,
            transient=False,
            error_type="malformed_request",
            description=(
                f"Invalid data format: the server rejected the request as malformed (HTTP {status})"
            ),
            request=request,
            status_code=status,
        )
    if 400 <= status < 500 and code is not None and status not in _STATUS_OWNS_MEANING:
        # A 409 with a business code is a business state, not a retryable race.
        return _make(
            ErrorCategory.BUSINESS,
            Severity.MINOR,
            transient=False,
            error_type="business_error",
            description=f"The request was refused for a business reason (HTTP {status})",
            request=request,
            status_code=status,
            retry_after=retry_after,
        )
    if status == 401:
        return protocol(
            Severity.MODERATE,
            False,
            "Authentication required: the credentials are missing, expired or invalid (HTTP 401)",
        )
    if status == 403:
        return protocol(
            Severity.MODERATE,
            False,
            "Permission denied: the caller is not allowed to do this; check the account's or "
            "API key's permissions — this is a configuration problem, not an outage (HTTP 403)",
        )
    if status == 404:
        return protocol(
            Severity.MODERATE, False, "Not found: no such resource or endpoint (HTTP 404)"
        )
    if status == 408:
        return protocol(Severity.MINOR, True, "The server timed out waiting for the request (408)")
    if status == 409:
        # Transient only while an earlier attempt with the same Idempotency-Key is
        # in flight (IETF idempotency draft): retrying then returns its result.
        keyed = request is not None and IDEMPOTENCY_KEY_HEADER in request.headers
        return protocol(
            Severity.MINOR,
            keyed,
            "Conflict: the request conflicts with the resource's current state (HTTP 409)",
        )
    if status == 425:
        return protocol(Severity.MINOR, True, "Too early: the server asks to retry later (425)")
    if status == 429:
        return protocol(
            Severity.MINOR, True, "Rate limited: too many requests, slow down (HTTP 429)"
        )
    if status in (502, 503, 504):
        phrase = {
            502: "Bad gateway: a proxy got no valid answer from the service",
            503: "Service unavailable: the service is down or overloaded",
            504: "Gateway timeout: a proxy timed out waiting for the service",
        }[status]
        return protocol(Severity.SEVERE, True, f"{phrase} (HTTP {status})")
    if status == 529:
        return protocol(Severity.SEVERE, True, "The service is overloaded (HTTP 529)")
    if status >= 500:
        return protocol(
            Severity.SEVERE,
            False,
            f"Server error: the service failed to handle the request (HTTP {status})",
        )
    if 400 <= status < 500:
        return protocol(Severity.MODERATE, False, f"The server refused the request (HTTP {status})")
    return protocol(Severity.MODERATE, False, f"Unexpected HTTP status {status}")


def _says_malformed(payload: ErrorPayload) -> bool:
    for text in (payload.error_code, payload.message, payload.title):
        if text and _MALFORMED_HINT.search(text):
            return True
    return False


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 16 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify_exception(exc: BaseException, request: httpx.Request | None) -> Classification:
    chain = _cause_chain(exc)
    text = " ".join(str(item) for item in chain).lower()

    def network(
        severity: Severity,
        error_type: str,
        description: str,
        *,
        transient: bool = True,
        sent: bool = True,
    ) -> Classification:
        return _make(
            ErrorCategory.NETWORK,
            severity,
            transient=transient,
            error_type=error_type,
            description=description,
            request=request,
            request_sent=sent,
        )

    if isinstance(exc, httpx.ConnectTimeout):
        return network(
            Severity.MODERATE,
            "connect_timeout",
            "Connect timeout: the server did not accept a connection in time",
            sent=False,
        )
    if isinstance(exc, httpx.PoolTimeout):
        return network(
            Severity.MODERATE,
            "pool_timeout",
            "Pool timeout: no connection became free in time",
            sent=False,
        )
    if isinstance(exc, httpx.ReadTimeout):
        return network(
            Severity.MODERATE,
            "read_timeout",
            "Read timeout: the request was sent but the answer did not arrive in time; "
            "the server may have acted on it",
        )
    if isinstance(exc, httpx.WriteTimeout):
        return network(
            Severity.MODERATE,
            "write_timeout",
            "Write timeout: the request could not be sent in time",
        )
    if isinstance(exc, httpx.TimeoutException):
        return network(Severity.MODERATE, "timeout", "The request timed out")
    if isinstance(exc, httpx.ConnectError):
        if any(isinstance(item, socket.gaierror) for item in chain) or any(
            hint in text for hint in _DNS_HINTS
        ):
            temporary = "temporary" in text or any(
                isinstance(item, socket.gaierror) and item.errno == socket.EAI_AGAIN
                for item in chain
            )
            return network(
                Severity.MODERATE if temporary else Severity.SEVERE,
                "dns_failure",
                "DNS failure: the server's host name could not be resolved",
                transient=temporary,
                sent=False,
            )
        if any(isinstance(item, ssl.SSLError) for item in chain) or "certificate" in text:
            return network(
                Severity.SEVERE,
                "connect_error",
                "TLS failure: a secure connection could not be established",
                transient=False,
                sent=False,
            )
        if any(isinstance(item, ConnectionRefusedError) for item in chain) or (
            "refused" in text or "all connection attempts failed" in text
        ):
            return network(
                Severity.SEVERE,
                "connection_refused",
                "Connection refused: nothing is listening at the server's address",
                sent=False,
            )
        return network(
            Severity.MODERATE,
            "connect_error",
            "Connection failed: the server could not be reached",
            sent=False,
        )
    if isinstance(exc, httpx.ProxyError):
        return network(Severity.MODERATE, "connect_error", "The proxy could not be used")
    if isinstance(exc, httpx.RemoteProtocolError) and not _looks_like_disconnect(text):
        return _malformed(request)
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return network(
            Severity.MINOR,
            "connection_lost",
            "Connection lost: the connection broke after the request may have been sent",
        )
    if isinstance(exc, httpx.DecodingError):
        return _malformed(request)
    if isinstance(exc, httpx.TooManyRedirects):
        return _make(
            ErrorCategory.PROTOCOL,
            Severity.MODERATE,
            transient=False,
            error_type="too_many_redirects",
            description="Too many redirects",
            request=request,
        )
    if isinstance(exc, httpx.NetworkError | httpx.TransportError):
        return network(Severity.MODERATE, "network_error", "Network error")
    return _make(
        ErrorCategory.NETWORK,
        Severity.MODERATE,
        transient=False,
        error_type="network_error",
        description=f"The request failed ({type(exc).__name__})",
        request=request,
    )


def _looks_like_disconnect(text: str) -> bool:
    return any(
        hint in text
        for hint in ("disconnected", "peer closed", "incomplete", "reset", "connection closed")
    )


def _malformed(request: httpx.Request | None) -> Classification:
    return _make(
        ErrorCategory.PROTOCOL,
        Severity.MODERATE,
        transient=False,
        error_type="malformed_response",
        description="Malformed response: the server broke the HTTP protocol",
        request=request,
    )
