"""`classify`: turn an httpx exception or a failing response into a `Classification`.

The rules are data (`rules.RULES`, the table docs/errors.md shows and a test checks):
this module only decides which row applies — by payload, then status, or by exception
type and cause chain — and builds the `Classification` the row describes.
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
from .parse import parse_error_payload
from .payload import ErrorPayload
from .retry_after import parse_retry_after
from .rules import (
    DATA_FORMAT_PHRASES,
    DATA_FORMAT_WORDS,
    DISCONNECT_HINTS,
    DNS_HINTS,
    EXCEPTION_RULES,
    MALFORMED_STATUSES,
    RULES,
    STATUS_OWNS_MEANING,
    TYPE_WORDS,
    ZH_DATA_FORMAT_TERMS,
    ZH_TYPE_WORDS,
    Sent,
    Transient,
    rule_for_status,
)
from .wire import IDEMPOTENCY_KEY_HEADER

__all__ = [
    "IDEMPOTENT_METHODS",
    "Classification",
    "build_error",
    "classify",
    "is_safe_to_retry",
    "payload_of",
    "says_malformed",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# Word splitting for the data-format vocabulary (rules.DATA_FORMAT_*): camelCase and
# acronym boundaries become spaces, then every run of ASCII letters/digits is a word.
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_ARTICLES = frozenset({"a", "an", "the"})
_ZH_TERMS = tuple(
    expanded
    for term in ZH_DATA_FORMAT_TERMS
    for expanded in (
        [term.replace("<type>", word) for word in ZH_TYPE_WORDS] if "<type>" in term else [term]
    )
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
        payload: the parsed error payload. When None and ``failure`` is a
            response whose body has been read, the body is parsed here
            (`parse_error_payload`), so ``classify(response)`` sees the same
            business code the client would.
        request: the request, when ``failure`` does not carry it.
        invalid_body: the response body was expected to be JSON (or to pass a
            validator) and was not: classify as a data-format error.

    Returns:
        A frozen `Classification`; never raises for any exception or response.

    Raises:
        TypeError: ``failure`` is neither an `httpx.Response` nor an exception,
            or ``payload`` / ``request`` is not what it should be.
    """
    _check_arguments(failure, payload, request)
    if isinstance(failure, httpx.Response):
        request = request or _request_of(failure)
        if invalid_body:
            return _from_rule("invalid_response_body", request, status=failure.status_code)
        if payload is None:
            payload = payload_of(failure)
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
    """Classify ``failure`` and build the matching `ApiError` subclass (not raised).

    Like `classify`, parses a read response body itself when no ``payload`` is given,
    and raises `TypeError` for arguments of the wrong type.
    """
    _check_arguments(failure, payload, request)
    if payload is None and isinstance(failure, httpx.Response) and not invalid_body:
        payload = payload_of(failure)
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


def payload_of(response: httpx.Response) -> ErrorPayload | None:
    """The parsed error payload of a response whose body was read; None otherwise."""
    try:
        content = response.content
    except httpx.ResponseNotRead:  # a stream nobody read: do not read it behind their back
        return None
    return parse_error_payload(
        content, content_type=response.headers.get("content-type"), status=response.status_code
    )


def _check_arguments(failure: object, payload: object, request: object) -> None:
    # Typed as object: the public signature is typed, but callers outside mypy pass
    # anything, and a clear TypeError beats an AttributeError deep inside.
    if not isinstance(failure, httpx.Response | BaseException):
        raise TypeError(
            "classify() takes an httpx.Response or the exception httpx raised, "
            f"not {type(failure).__name__}"
        )
    if payload is not None and not isinstance(payload, ErrorPayload):
        raise TypeError(f"payload must be an ErrorPayload or None, not {type(payload).__name__}")
    if request is not None and not isinstance(request, httpx.Request):
        raise TypeError(f"request must be an httpx.Request or None, not {type(request).__name__}")


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


def _from_rule(
    key: str,
    request: httpx.Request | None,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    exception: str = "",
) -> Classification:
    rule = RULES[key]
    transient = rule.transient is Transient.YES or (
        rule.transient is Transient.WITH_IDEMPOTENCY_KEY
        and request is not None
        and IDEMPOTENCY_KEY_HEADER in request.headers
    )
    request_sent = rule.sent is not Sent.NO
    return Classification(
        category=rule.category,
        severity=rule.severity,
        transient=transient,
        retryable=transient and is_safe_to_retry(request, request_sent=request_sent),
        error_type=rule.error_type or str(status),
        description=rule.describe(status=status, exception=exception),
        status_code=status,
        # A data-format verdict is about the body, not about when to come back.
        retry_after=None if rule.category is ErrorCategory.DATA_FORMAT else retry_after,
        request_sent=request_sent,
    )


def _classify_status(
    response: httpx.Response, payload: ErrorPayload | None, request: httpx.Request | None
) -> Classification:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None and payload is not None:
        retry_after = payload.retry_after
    key = _payload_rule(status, payload) or rule_for_status(status)
    return _from_rule(key, request, status=status, retry_after=retry_after)


def _payload_rule(status: int, payload: ErrorPayload | None) -> str | None:
    """The payload-driven row, when the payload decides (docs/errors.md footnotes 1, 2)."""
    if payload is None or not 400 <= status < 500:
        return None
    # A category the provider states wins over anything we could infer.
    if payload.category == ErrorCategory.BUSINESS:
        return "business_error"
    if payload.category == ErrorCategory.DATA_FORMAT:
        return "malformed_request"
    if payload.category is not None:  # protocol (or network): the status decides
        return None
    if status in MALFORMED_STATUSES and says_malformed(
        payload.error_code, payload.message, payload.title
    ):
        return "malformed_request"
    if payload.error_code is not None and status not in STATUS_OWNS_MEANING:
        # A 409 with a business code is a business state, not a retryable race.
        return "business_error"
    return None


def says_malformed(*texts: str | None) -> bool:
    """True when any text reads as "the request was malformed" by the vocabulary rules
    of `rules` (`DATA_FORMAT_WORDS`, `DATA_FORMAT_PHRASES`, `ZH_DATA_FORMAT_TERMS`)."""
    for text in texts:
        if not text:
            continue
        if any(term in text for term in _ZH_TERMS):
            return True
        if _matches_words(_words(text)):
            return True
    return False


def _words(text: str) -> list[frozenset[str]]:
    # Each word with its forms: itself, and without a final "s" (parameters → parameter).
    words = _WORD.findall(_CAMEL_BOUNDARY.sub(" ", text).lower())
    return [
        frozenset((word, word[:-1])) if len(word) > 3 and word.endswith("s") else frozenset((word,))
        for word in words
        if word not in _ARTICLES
    ]


def _matches_words(words: list[frozenset[str]]) -> bool:
    if any(forms & DATA_FORMAT_WORDS for forms in words):
        return True
    for phrase in DATA_FORMAT_PHRASES:
        for start in range(len(words) - len(phrase) + 1):
            if all(
                (forms & TYPE_WORDS) if part == "<type>" else (part in forms)
                for part, forms in zip(phrase, words[start : start + len(phrase)], strict=True)
            ):
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
    return _from_rule(_exception_rule(exc), request, exception=type(exc).__name__)


def _exception_rule(exc: BaseException) -> str:
    key = next((key for kind, key in EXCEPTION_RULES if isinstance(exc, kind)), "other_exception")
    chain = _cause_chain(exc)
    text = " ".join(str(item) for item in chain).lower()
    if key == "connect_error":
        if any(isinstance(item, socket.gaierror) for item in chain) or any(
            hint in text for hint in DNS_HINTS
        ):
            temporary = "temporary" in text or any(
                isinstance(item, socket.gaierror) and item.errno == socket.EAI_AGAIN
                for item in chain
            )
            return "dns_temporary" if temporary else "dns_failure"
        if any(isinstance(item, ssl.SSLError) for item in chain) or "certificate" in text:
            return "tls_failure"
        if any(isinstance(item, ConnectionRefusedError) for item in chain) or (
            "refused" in text or "all connection attempts failed" in text
        ):
            return "connection_refused"
    if isinstance(exc, httpx.RemoteProtocolError) and not any(
        hint in text for hint in DISCONNECT_HINTS
    ):
        return "malformed_response"
    return key
