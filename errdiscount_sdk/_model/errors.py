"""The exception tree of errdiscount.

Everything errdiscount raises on purpose derives from `ErrDiscountError`; no
exception of httpx, tenacity, pyjwt or cryptography escapes the public API.

```
ErrDiscountError
├── ApiError                      an API call failed; .category .severity .transient ...
│   ├── NetworkError              category NETWORK: no usable HTTP exchange
│   │   ├── DnsFailure            the host name did not resolve (request never sent)
│   │   ├── ConnectFailed         no connection (request never sent)
│   │   │   └── ConnectionRefused nothing listens on that port
│   │   ├── ConnectionLost        the connection broke after the request may have been sent
│   │   └── RequestTimeout
│   │       ├── ConnectTimeout    (request never sent)
│   │       ├── PoolTimeout       (request never sent)
│   │       ├── WriteTimeout      (request partly sent)
│   │       └── ReadTimeout       (request sent; the server may have acted on it)
│   ├── ProtocolError             category PROTOCOL: the HTTP status (or framing) says it failed
│   │   ├── AuthenticationRequired   401
│   │   ├── PermissionDenied         403
│   │   ├── NotFound                 404
│   │   ├── Conflict                 409
│   │   ├── RateLimited              429
│   │   ├── ServerError              5xx
│   │   │   ├── BadGateway           502
│   │   │   ├── ServiceUnavailable   503
│   │   │   └── GatewayTimeout       504
│   │   ├── MalformedResponse        the server broke HTTP itself (bad framing, bad encoding)
│   │   ├── TooManyRedirects
│   │   └── UnexpectedStatus         any other failing status
│   ├── BusinessError             category BUSINESS: a 4xx naming a business error_code
│   │   └── RedemptionError       the redemption server refused a voucher
│   │       ├── TokenRejected         invalid, expired or foreign token
│   │       ├── AlreadyRedeemed       TOKEN_ALREADY_REDEEMED
│   │       ├── BudgetExhausted       budget or inventory exhausted
│   │       ├── UserCapReached        per-user cap reached
│   │       └── IdempotencyConflict   same key in flight, or reused with another body
│   ├── DataFormatError           category DATA_FORMAT
│   │   ├── InvalidResponseBody   the client could not parse (or validate) a body
│   │   └── MalformedRequest      the server rejected the request as malformed (400/422)
│   └── RetryAfterTooLong         the server asked to wait longer than allowed; not slept
├── ProviderError                 raised by a provider's own code; the middleware answers with it
├── UnsafeAlertUrl                an alert_url failed the AlertUrlPolicy (also ValueError)
├── InvalidEvent                  an event breaks the event contract (also ValueError); .reason
├── ConfigurationError            bad arguments or settings (also ValueError)
│   ├── KeyLoadError              a signing key / JWKS could not be loaded
│   └── PolicyError               a compensation policy file is invalid
└── TokenError                    a discount token failed verification
    ├── MalformedToken            not a well-formed compact JWS of our type
    │   └── TokenTooLarge
    ├── UnsupportedAlgorithm      alg none/HMAC/unknown, or not the key's pinned alg
    ├── UnsupportedCriticalHeader
    ├── WrongTokenType            typ is not errdiscount+jwt
    ├── UnknownKey                no trusted key has that kid
    ├── KeySetUnavailable         a remote JWKS could not be fetched and none is cached
    ├── InvalidSignature
    ├── InvalidClaims             a claim is missing or of the wrong type/value
    │   ├── TokenExpired
    │   ├── TokenNotYetValid
    │   ├── WrongIssuer
    │   ├── WrongAudience
    │   └── WrongSubject
```

`ApiError` carries the request, the response (or None), the parsed payload (or
None), the number of attempts made, and what the client learned about a
discount token or alert URL found in the payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from .enums import ErrorCategory, RetryStop, Severity

if TYPE_CHECKING:
    import httpx

    from .classify import Classification
    from .payload import ErrorPayload

__all__ = [
    "AlreadyRedeemed",
    "ApiError",
    "AuthenticationRequired",
    "BadGateway",
    "BudgetExhausted",
    "BusinessError",
    "ConfigurationError",
    "Conflict",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionRefused",
    "DataFormatError",
    "DnsFailure",
    "ErrDiscountError",
    "GatewayTimeout",
    "IdempotencyConflict",
    "InvalidClaims",
    "InvalidEvent",
    "InvalidResponseBody",
    "InvalidSignature",
    "KeyLoadError",
    "KeySetUnavailable",
    "MalformedRequest",
    "MalformedResponse",
    "MalformedToken",
    "NetworkError",
    "NotFound",
    "PermissionDenied",
    "PolicyError",
    "PoolTimeout",
    "ProtocolError",
    "RateLimited",
    "ReadTimeout",
    "RedemptionError",
    "RequestTimeout",
    "RetryAfterTooLong",
    "ServerError",
    "ServiceUnavailable",
    "TokenError",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenRejected",
    "TokenTooLarge",
    "TooManyRedirects",
    "UnexpectedStatus",
    "UnknownKey",
    "UnsafeAlertUrl",
    "UnsupportedAlgorithm",
    "UnsupportedCriticalHeader",
    "UserCapReached",
    "WriteTimeout",
    "WrongAudience",
    "WrongIssuer",
    "WrongSubject",
    "WrongTokenType",
    "error_class_for",
]


class ErrDiscountError(Exception):
    """Root of every exception errdiscount raises on purpose."""


class ConfigurationError(ErrDiscountError, ValueError):
    """Arguments or settings that cannot work (raised at construction, not per call)."""


class KeyLoadError(ConfigurationError):
    """A signing key, PEM file or JWKS document could not be loaded."""


class PolicyError(ConfigurationError):
    """A compensation policy is invalid; the message names the bad field."""


class UnsafeAlertUrl(ErrDiscountError, ValueError):
    """An ``alert_url`` was refused by the `AlertUrlPolicy`.

    Attributes:
        url: the refused URL, shortened for display.
        reason: a short machine-readable reason (``"scheme"``, ``"host"``, ...).
    """

    def __init__(self, url: str, reason: str) -> None:
        shown = url if len(url) <= 120 else url[:117] + "..."
        super().__init__(f"alert_url refused ({reason}): {shown!r}")
        self.url = shown
        self.reason = reason


class InvalidEvent(ErrDiscountError, ValueError):
    """A call or outcome event breaks the event contract (docs/events.md).

    Attributes:
        reason: what is wrong, naming the member: ``"<problem>:<member>"`` from
            `parse_event` (e.g. ``"missing:event_id"``, ``"too_long:endpoint"``), or a
            sentence from the backtest's reader (``"ts: must be ..."``).
        line: the 1-based line in an events file (the backtest), or None.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        text = f"invalid event ({reason})"
        super().__init__(text if line is None else f"line {line}: {text}")
        self.reason = reason
        self.line = line


class ApiError(ErrDiscountError):
    """An API call failed. Raised by the clients; built from a `Classification`.

    An `ApiError` is complete when it is constructed: a client builds one per
    failed attempt, and the error it finally raises is a copy (`evolve`) that
    adds what only the end of the call knows (attempts, why no retry followed,
    what the payload's token and alert URL turned out to be). Nothing is
    filled in afterwards.

    Attributes:
        category: one of the four `ErrorCategory` values.
        severity: `Severity` of the failure for the user.
        transient: True when the same call may succeed if tried again.
        retryable: True when retrying is also *safe* for this request.
        retry_after: seconds the server asked to wait, or None.
        error_type: low-cardinality identifier (OpenTelemetry ``error.type``).
        status_code: the HTTP status, or None when no response arrived.
        payload: the parsed `ErrorPayload`, or None.
        request: the `httpx.Request` (requests' are translated), or None.
        response: the `httpx.Response`, or None when no response arrived. Its
            body holds at most the first `MAX_BODY_BYTES` (+1) bytes: error
            bodies are read with a cap.
        attempts: how many attempts the client made before giving up.
        retry_stopped_by: why no further attempt was made (a `RetryStop`), or
            None for an error not raised by a client's retry loop.
        discount: the verified discount token (a `DiscountToken`) when the
            client has a verifier and the token verified, else None.
        discount_rejection: why a token found in the payload was not handed
            out as verified (the `TokenError`), else None.
        alert_url: the payload's alert URL if the client's policy allowed it.
        alert_url_rejection: the `UnsafeAlertUrl` if the policy refused it.
    """

    def __init__(
        self,
        message: str,
        *,
        classification: Classification,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
        payload: ErrorPayload | None = None,
        attempts: int = 1,
        retry_stopped_by: RetryStop | None = None,
        discount: Any = None,
        discount_rejection: TokenError | None = None,
        alert_url: str | None = None,
        alert_url_rejection: UnsafeAlertUrl | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.classification = classification
        self.request = request
        self.response = response
        self.payload = payload
        self.attempts = attempts
        self.retry_stopped_by = retry_stopped_by
        self.discount = discount
        self.discount_rejection = discount_rejection
        self.alert_url = alert_url
        self.alert_url_rejection = alert_url_rejection

    def _constructor_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """What rebuilds this error: positional and keyword arguments of ``__init__``.

        A subclass with its own ``__init__`` overrides this, so `evolve` keeps working.
        """
        return (self.message,), {
            "classification": self.classification,
            "request": self.request,
            "response": self.response,
            "payload": self.payload,
            **self._outcome_fields(),
        }

    def _outcome_fields(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "retry_stopped_by": self.retry_stopped_by,
            "discount": self.discount,
            "discount_rejection": self.discount_rejection,
            "alert_url": self.alert_url,
            "alert_url_rejection": self.alert_url_rejection,
        }

    def evolve(self, **changes: Any) -> Self:
        """A copy of this error (same class, same ``__cause__``) with ``changes`` applied.

        ``changes`` name constructor arguments (``attempts=3``,
        ``retry_stopped_by=RetryStop.BUDGET``, ``discount=...``), as ``attrs.evolve``.
        """
        args, kwargs = self._constructor_args()
        kwargs.update(changes)
        copy = type(self)(*args, **kwargs)
        copy.__cause__ = self.__cause__
        return copy

    @property
    def category(self) -> ErrorCategory:
        return self.classification.category

    @property
    def severity(self) -> Severity:
        return self.classification.severity

    @property
    def transient(self) -> bool:
        return self.classification.transient

    @property
    def retryable(self) -> bool:
        return self.classification.retryable

    @property
    def retry_after(self) -> float | None:
        return self.classification.retry_after

    @property
    def error_type(self) -> str:
        return self.classification.error_type

    @property
    def status_code(self) -> int | None:
        return self.classification.status_code

    @property
    def error_code(self) -> str | None:
        """The payload's stable machine code (e.g. ``PAY_001``), if any."""
        return self.payload.error_code if self.payload is not None else None

    def __str__(self) -> str:
        notes = []
        if self.attempts > 1:
            notes.append(f"after {self.attempts} attempts")
        stop = _STOP_NOTES.get(self.retry_stopped_by) if self.retry_stopped_by else None
        if stop is not None:
            notes.append(stop)
        return f"{self.message} ({'; '.join(notes)})" if notes else self.message

    def __repr__(self) -> str:
        stopped = (
            f", retry_stopped_by={self.retry_stopped_by.value!r}" if self.retry_stopped_by else ""
        )
        return (
            f"{type(self).__name__}({self.message!r}, category={self.category.value!r}, "
            f"severity={self.severity.value!r}, status_code={self.status_code!r}, "
            f"attempts={self.attempts}{stopped})"
        )


# What str(error) says about why the retries stopped; the stops a reader would not guess.
_STOP_NOTES: dict[RetryStop, str] = {
    RetryStop.UNSAFE_RESEND: "not resent: the request may have reached the server",
    RetryStop.ONE_SHOT_BODY: "not resent: the request body was a one-shot stream",
    RetryStop.DEADLINE: "no retry: the retry deadline would pass",
    RetryStop.BUDGET: "no retry: the retry budget is exhausted",
}


class NetworkError(ApiError):
    """No usable HTTP exchange: DNS, connection, timeouts, resets."""


class DnsFailure(NetworkError):
    """The host name did not resolve; the request was never sent."""


class ConnectFailed(NetworkError):
    """No connection could be made; the request was never sent."""


class ConnectionRefused(ConnectFailed):
    """The host answered but nothing listens on that port."""


class ConnectionLost(NetworkError):
    """The connection broke after the request may have reached the server."""


class RequestTimeout(NetworkError):
    """A timeout expired. Subclasses say at which stage."""


class ConnectTimeout(RequestTimeout):
    """Connecting took too long; the request was never sent."""


class PoolTimeout(RequestTimeout):
    """No pooled connection became free in time; the request was never sent."""


class WriteTimeout(RequestTimeout):
    """Sending the request took too long; part of it may have arrived."""


class ReadTimeout(RequestTimeout):
    """The request was sent but the answer took too long; the server may have acted."""


class ProtocolError(ApiError):
    """An HTTP exchange happened and its status (or framing) says the call failed."""


class AuthenticationRequired(ProtocolError):
    """401: the server does not know who is calling (missing or invalid credentials)."""


class PermissionDenied(ProtocolError):
    """403: the caller is known but not allowed to do this (a permission problem)."""


class NotFound(ProtocolError):
    """404: no such resource (or endpoint) on the server."""


class Conflict(ProtocolError):
    """409: the request conflicts with the resource's current state."""


class RateLimited(ProtocolError):
    """429: too many requests; ``retry_after`` says how long to wait, when given."""


class ServerError(ProtocolError):
    """5xx: the server failed."""


class BadGateway(ServerError):
    """502: a proxy or gateway got no valid answer from the server behind it."""


class ServiceUnavailable(ServerError):
    """503: the service is down or overloaded."""


class GatewayTimeout(ServerError):
    """504: a proxy or gateway timed out waiting for the server behind it."""


class MalformedResponse(ProtocolError):
    """The server broke HTTP itself (bad framing, bad content encoding)."""


class TooManyRedirects(ProtocolError):
    """The redirect limit was exceeded."""


class UnexpectedStatus(ProtocolError):
    """A failing status with no more specific class."""


class BusinessError(ApiError):
    """The server refused the request for a business reason named in its payload."""


class RedemptionError(BusinessError):
    """The redemption server refused to redeem a discount token."""


class TokenRejected(RedemptionError):
    """The token is invalid, expired, or was issued by an untrusted issuer."""


class AlreadyRedeemed(RedemptionError):
    """The token was already redeemed (error code ``TOKEN_ALREADY_REDEEMED``)."""


class BudgetExhausted(RedemptionError):
    """The compensation budget or inventory for this token is exhausted."""


class UserCapReached(RedemptionError):
    """The user has reached the per-user compensation cap."""


class IdempotencyConflict(RedemptionError):
    """The Idempotency-Key is in flight, or was used before with another body."""


class DataFormatError(ApiError):
    """A body could not be parsed where one was expected, or the request was malformed."""


class InvalidResponseBody(DataFormatError):
    """The client could not parse (or validate) the response body."""


class MalformedRequest(DataFormatError):
    """The server rejected the request itself as malformed (400/422 saying so)."""


class RetryAfterTooLong(ApiError):
    """The server asked to wait longer than the retry policy allows; nothing was slept.

    A client raises it as a subclass of the last attempt's class too, so
    ``except ServiceUnavailable`` catches a 503's and ``except RateLimited`` a
    429's (`for_error` builds that class: ``RetryAfterTooLong[ServiceUnavailable]``).

    Attributes:
        requested_wait: the wait in seconds the server asked for.
        limit: the longest wait the policy allowed at that point.
        last_error: the `ApiError` of the attempt that carried the request to wait.
    """

    def __init__(
        self,
        last_error: ApiError,
        requested_wait: float,
        limit: float,
        *,
        attempts: int | None = None,
        retry_stopped_by: RetryStop | None = RetryStop.RETRY_AFTER_TOO_LONG,
        discount: Any = None,
        discount_rejection: TokenError | None = None,
        alert_url: str | None = None,
        alert_url_rejection: UnsafeAlertUrl | None = None,
    ) -> None:
        super().__init__(
            f"{last_error.message}; the server asked to wait {requested_wait:g}s, "
            f"more than the allowed {limit:g}s, so the call was not retried",
            classification=last_error.classification,
            request=last_error.request,
            response=last_error.response,
            payload=last_error.payload,
            attempts=last_error.attempts if attempts is None else attempts,
            retry_stopped_by=retry_stopped_by,
            discount=discount,
            discount_rejection=discount_rejection,
            alert_url=alert_url,
            alert_url_rejection=alert_url_rejection,
        )
        self.requested_wait = requested_wait
        self.limit = limit
        self.last_error = last_error

    def _constructor_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.last_error, self.requested_wait, self.limit), self._outcome_fields()

    @staticmethod
    def for_error(
        last_error: ApiError, requested_wait: float, limit: float, **fields: Any
    ) -> RetryAfterTooLong:
        """The `RetryAfterTooLong` that is also an instance of ``last_error``'s class."""
        cls = _retry_after_too_long_class(type(last_error))
        return cls(last_error, requested_wait, limit, **fields)


_RETRY_AFTER_CLASSES: dict[type[ApiError], type[RetryAfterTooLong]] = {}


def _retry_after_too_long_class(status_class: type[ApiError]) -> type[RetryAfterTooLong]:
    # One class per status class, made once: "except ServiceUnavailable" and
    # "except RetryAfterTooLong" both catch a 503 that asked for too long a wait.
    if issubclass(status_class, RetryAfterTooLong) or status_class is ApiError:
        return RetryAfterTooLong
    known = _RETRY_AFTER_CLASSES.get(status_class)
    if known is not None:
        return known
    name = f"RetryAfterTooLong[{status_class.__name__}]"
    made = type(
        name,
        (RetryAfterTooLong, status_class),
        {
            "__module__": RetryAfterTooLong.__module__,
            "__qualname__": name,
            "__doc__": f"`RetryAfterTooLong` for a `{status_class.__name__}`.",
        },
    )
    # setdefault: two threads racing here still agree on one class.
    return _RETRY_AFTER_CLASSES.setdefault(status_class, made)


class TokenError(ErrDiscountError):
    """A discount token failed verification. ``reason`` is a stable short code."""

    reason: ClassVar[str] = "invalid_token"


class MalformedToken(TokenError):
    """Not a well-formed compact JWS (segments, base64url, JSON, header)."""

    reason = "malformed"


class TokenTooLarge(MalformedToken):
    """Longer than the verifier's size cap; not parsed at all."""

    reason = "too_large"


class UnsupportedAlgorithm(TokenError):
    """``alg`` is none, HMAC, unknown, or not the algorithm pinned to the key."""

    reason = "unsupported_algorithm"


class UnsupportedCriticalHeader(TokenError):
    """``crit`` names an extension this verifier does not implement."""

    reason = "unsupported_crit"


class WrongTokenType(TokenError):
    """``typ`` is missing or is not ``errdiscount+jwt``."""

    reason = "wrong_type"


class UnknownKey(TokenError):
    """No trusted key has the token's ``kid``."""

    reason = "unknown_key"


class KeySetUnavailable(TokenError):
    """A remote JWKS could not be fetched and no usable copy is cached."""

    reason = "keys_unavailable"


class InvalidSignature(TokenError):
    """The signature does not verify with the key named by ``kid``."""

    reason = "bad_signature"


class InvalidClaims(TokenError):
    """A required claim is missing, or a claim has the wrong type or value."""

    reason = "invalid_claims"


class TokenExpired(InvalidClaims):
    """``exp`` is in the past (beyond the leeway)."""

    reason = "expired"


class TokenNotYetValid(InvalidClaims):
    """``nbf`` (or ``iat``) is in the future (beyond the leeway)."""

    reason = "not_yet_valid"


class WrongIssuer(InvalidClaims):
    """``iss`` is not the expected issuer."""

    reason = "wrong_issuer"


class WrongAudience(InvalidClaims):
    """``aud`` does not contain the expected audience."""

    reason = "wrong_audience"


class WrongSubject(InvalidClaims):
    """``sub`` is not the expected subject."""

    reason = "wrong_subject"


_CLASS_BY_ERROR_TYPE: dict[str, type[ApiError]] = {
    "dns_failure": DnsFailure,
    "connect_error": ConnectFailed,
    "connection_refused": ConnectionRefused,
    "connection_lost": ConnectionLost,
    "connect_timeout": ConnectTimeout,
    "pool_timeout": PoolTimeout,
    "write_timeout": WriteTimeout,
    "read_timeout": ReadTimeout,
    "timeout": RequestTimeout,
    "network_error": NetworkError,
    "malformed_response": MalformedResponse,
    "too_many_redirects": TooManyRedirects,
    "business_error": BusinessError,
    "invalid_response_body": InvalidResponseBody,
    "malformed_request": MalformedRequest,
}

_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationRequired,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    502: BadGateway,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def error_class_for(classification: Classification) -> type[ApiError]:
    """The most specific `ApiError` subclass for a classification."""
    by_type = _CLASS_BY_ERROR_TYPE.get(classification.error_type)
    if by_type is not None:
        return by_type
    status = classification.status_code
    if status is not None:
        if status in _CLASS_BY_STATUS:
            return _CLASS_BY_STATUS[status]
        if status >= 500:
            return ServerError
        return UnexpectedStatus
    return {
        ErrorCategory.NETWORK: NetworkError,
        ErrorCategory.PROTOCOL: ProtocolError,
        ErrorCategory.BUSINESS: BusinessError,
        ErrorCategory.DATA_FORMAT: DataFormatError,
    }[classification.category]
