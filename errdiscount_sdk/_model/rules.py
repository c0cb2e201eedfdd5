"""The classification rules as data: one `Rule` per kind of failure, interpreted by `classify`.

`RULES` is the table docs/errors.md shows ("The rules"); tests/sdk/test_rules.py parses
the page and checks that it says exactly what this module says, so the two cannot drift.
`classify` only decides *which* row applies (by status, by exception type, by payload);
everything a row implies — category, severity, transience, whether the request was
sent, the exception class, the description — is read from the row.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs
import httpx

from .enums import ErrorCategory, Severity
from .errors import (
    ApiError,
    AuthenticationRequired,
    BadGateway,
    BusinessError,
    Conflict,
    ConnectFailed,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    DnsFailure,
    GatewayTimeout,
    InvalidResponseBody,
    MalformedRequest,
    MalformedResponse,
    NetworkError,
    NotFound,
    PermissionDenied,
    PoolTimeout,
    RateLimited,
    ReadTimeout,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    TooManyRedirects,
    UnexpectedStatus,
    WriteTimeout,
)

__all__ = [
    "DATA_FORMAT_PHRASES",
    "DATA_FORMAT_WORDS",
    "DISCONNECT_HINTS",
    "DNS_HINTS",
    "EXCEPTION_RULES",
    "MALFORMED_STATUSES",
    "RULES",
    "STATUS_OWNS_MEANING",
    "STATUS_RULES",
    "TYPE_WORDS",
    "ZH_DATA_FORMAT_TERMS",
    "ZH_TYPE_WORDS",
    "Rule",
    "Sent",
    "Transient",
    "rule_for_status",
]


class Transient(enum.StrEnum):
    """May the same request succeed if tried again?"""

    YES = "yes"
    NO = "no"
    WITH_IDEMPOTENCY_KEY = "only with an Idempotency-Key"
    """A 409 means "the first attempt with this key is still in flight" (IETF
    idempotency-key draft) only when the request carries a key."""


class Sent(enum.StrEnum):
    """Did any of the request reach the server?"""

    NO = "no"
    PARTLY = "partly"
    YES = "yes"


@attrs.frozen
class Rule:
    """One row of the classification table.

    Attributes:
        failure: the row's failure as docs/errors.md words it (footnotes aside).
        category: which of the four kinds of API error.
        severity: how badly it hurts the user.
        transient: whether trying again may succeed.
        sent: whether the request reached the server (``Sent.NO`` makes any
            method safe to retry).
        error_class: the `ApiError` subclass `build_error` raises for this row.
        error_type: the OpenTelemetry ``error.type``; None means the HTTP status
            as a string.
        description: one human sentence; ``{status}`` and ``{exception}`` are
            filled in (the status code, the exception's class name).
    """

    failure: str
    category: ErrorCategory
    severity: Severity
    transient: Transient
    sent: Sent
    error_class: type[ApiError]
    error_type: str | None
    description: str

    def describe(self, *, status: int | None = None, exception: str = "") -> str:
        """The row's description with the status and exception name filled in."""
        return self.description.format(status=status, exception=exception)


_N, _P, _B, _D = (
    ErrorCategory.NETWORK,
    ErrorCategory.PROTOCOL,
    ErrorCategory.BUSINESS,
    ErrorCategory.DATA_FORMAT,
)
_MINOR, _MODERATE, _SEVERE = Severity.MINOR, Severity.MODERATE, Severity.SEVERE
_YES, _NO, _KEYED = Transient.YES, Transient.NO, Transient.WITH_IDEMPOTENCY_KEY


def _rule(
    failure: str,
    category: ErrorCategory,
    severity: Severity,
    transient: Transient,
    sent: Sent,
    error_class: type[ApiError],
    error_type: str | None,
    description: str,
) -> Rule:
    return Rule(failure, category, severity, transient, sent, error_class, error_type, description)


# fmt: off
RULES: Final[Mapping[str, Rule]] = MappingProxyType({
    # -- no usable HTTP exchange: picked by exception type (EXCEPTION_RULES) --------------
    "dns_failure": _rule(
        "DNS name does not exist (NXDOMAIN, `.invalid`)", _N, _SEVERE, _NO, Sent.NO,
        DnsFailure, "dns_failure", "DNS failure: the server's host name could not be resolved"),
    "dns_temporary": _rule(
        "DNS temporary failure (EAI_AGAIN)", _N, _MODERATE, _YES, Sent.NO,
        DnsFailure, "dns_failure", "DNS failure: the server's host name could not be resolved"),
    "connection_refused": _rule(
        "connection refused", _N, _SEVERE, _YES, Sent.NO, ConnectionRefused,
        "connection_refused", "Connection refused: nothing is listening at the server's address"),
    "tls_failure": _rule(
        "TLS handshake failure", _N, _SEVERE, _NO, Sent.NO, ConnectFailed,
        "connect_error", "TLS failure: a secure connection could not be established"),
    "connect_error": _rule(
        "other connect error", _N, _MODERATE, _YES, Sent.NO, ConnectFailed,
        "connect_error", "Connection failed: the server could not be reached"),
    "proxy_error": _rule(
        "proxy error", _N, _MODERATE, _YES, Sent.YES, ConnectFailed,
        "connect_error", "The proxy could not be used"),
    "connect_timeout": _rule(
        "connect timeout", _N, _MODERATE, _YES, Sent.NO, ConnectTimeout,
        "connect_timeout", "Connect timeout: the server did not accept a connection in time"),
    "pool_timeout": _rule(
        "pool timeout", _N, _MODERATE, _YES, Sent.NO, PoolTimeout,
        "pool_timeout", "Pool timeout: no connection became free in time"),
    "write_timeout": _rule(
        "write timeout", _N, _MODERATE, _YES, Sent.PARTLY, WriteTimeout,
        "write_timeout", "Write timeout: the request could not be sent in time"),
    "read_timeout": _rule(
        "read timeout", _N, _MODERATE, _YES, Sent.YES, ReadTimeout, "read_timeout",
        "Read timeout: the request was sent but the answer did not arrive in time; "
        "the server may have acted on it"),
    "timeout": _rule(
        "other timeout", _N, _MODERATE, _YES, Sent.YES, RequestTimeout,
        "timeout", "The request timed out"),
    "connection_lost": _rule(
        "connection reset / server disconnected", _N, _MINOR, _YES, Sent.YES, ConnectionLost,
        "connection_lost",
        "Connection lost: the connection broke after the request may have been sent"),
    "network_error": _rule(
        "other transport error", _N, _MODERATE, _YES, Sent.YES, NetworkError,
        "network_error", "Network error"),
    "malformed_response": _rule(
        "broken HTTP framing, bad content encoding", _P, _MODERATE, _NO, Sent.YES,
        MalformedResponse, "malformed_response",
        "Malformed response: the server broke the HTTP protocol"),
    "too_many_redirects": _rule(
        "too many redirects", _P, _MODERATE, _NO, Sent.YES, TooManyRedirects,
        "too_many_redirects", "Too many redirects"),
    "other_exception": _rule(
        "any other exception", _N, _MODERATE, _NO, Sent.YES, NetworkError,
        "network_error", "The request failed ({exception})"),
    # -- a response arrived: picked by payload, then by status (STATUS_RULES) -------------
    "malformed_request": _rule(
        "4xx stating `category: data_format`; 400 / 422 whose payload reads as malformed",
        _D, _MINOR, _NO, Sent.YES, MalformedRequest, "malformed_request",
        "Invalid data format: the server rejected the request as malformed (HTTP {status})"),
    "business_error": _rule(
        "4xx stating `category: business`; other 4xx with a payload `error_code`",
        _B, _MINOR, _NO, Sent.YES, BusinessError, "business_error",
        "The request was refused for a business reason (HTTP {status})"),
    "status_401": _rule(
        "401", _P, _MODERATE, _NO, Sent.YES, AuthenticationRequired, None,
        "Authentication required: the credentials are missing, expired or invalid (HTTP 401)"),
    "status_403": _rule(
        "403", _P, _MODERATE, _NO, Sent.YES, PermissionDenied, None,
        "Permission denied: the caller is not allowed to do this; check the account's or "
        "API key's permissions — this is a configuration problem, not an outage (HTTP 403)"),
    "status_404": _rule(
        "404", _P, _MODERATE, _NO, Sent.YES, NotFound, None,
        "Not found: no such resource or endpoint (HTTP 404)"),
    "status_408": _rule(
        "408", _P, _MINOR, _YES, Sent.YES, UnexpectedStatus, None,
        "The server timed out waiting for the request (408)"),
    "status_409": _rule(
        "409", _P, _MINOR, _KEYED, Sent.YES, Conflict, None,
        "Conflict: the request conflicts with the resource's current state (HTTP 409)"),
    "status_425": _rule(
        "425", _P, _MINOR, _YES, Sent.YES, UnexpectedStatus, None,
        "Too early: the server asks to retry later (425)"),
    "status_429": _rule(
        "429", _P, _MINOR, _YES, Sent.YES, RateLimited, None,
        "Rate limited: too many requests, slow down (HTTP 429)"),
    "other_4xx": _rule(
        "other 4xx", _P, _MODERATE, _NO, Sent.YES, UnexpectedStatus, None,
        "The server refused the request (HTTP {status})"),
    "server_error": _rule(
        "500, 501, other 5xx", _P, _SEVERE, _NO, Sent.YES, ServerError, None,
        "Server error: the service failed to handle the request (HTTP {status})"),
    "status_502": _rule(
        "502", _P, _SEVERE, _YES, Sent.YES, BadGateway, None,
        "Bad gateway: a proxy got no valid answer from the service (HTTP 502)"),
    "status_503": _rule(
        "503", _P, _SEVERE, _YES, Sent.YES, ServiceUnavailable, None,
        "Service unavailable: the service is down or overloaded (HTTP 503)"),
    "status_504": _rule(
        "504", _P, _SEVERE, _YES, Sent.YES, GatewayTimeout, None,
        "Gateway timeout: a proxy timed out waiting for the service (HTTP 504)"),
    "status_529": _rule(
        "529 (overloaded)", _P, _SEVERE, _YES, Sent.YES, ServerError, None,
        "The service is overloaded (HTTP 529)"),
    "other_status": _rule(
        "any other status passed in (1xx to 3xx)", _P, _MODERATE, _NO, Sent.YES, UnexpectedStatus,
        None, "Unexpected HTTP status {status}"),
    "invalid_response_body": _rule(
        "success body not JSON / failed the validator", _D, _MODERATE, _NO, Sent.YES,
        InvalidResponseBody, "invalid_response_body",
        "Invalid data format: the HTTP {status} response body could not be parsed "
        "or failed validation"),
})
# fmt: on

STATUS_RULES: Final[Mapping[int, str]] = MappingProxyType(
    {
        401: "status_401",
        403: "status_403",
        404: "status_404",
        408: "status_408",
        409: "status_409",
        425: "status_425",
        429: "status_429",
        502: "status_502",
        503: "status_503",
        504: "status_504",
        529: "status_529",
    }
)
"""Statuses with a row of their own; the others fall to `rule_for_status`'s ranges."""

STATUS_OWNS_MEANING: Final = frozenset({401, 403, 404, 405, 406, 408, 413, 414, 415, 429, 431})
"""Statuses whose meaning the status alone fixes, whatever code the body names: a 403
with a business code is still a permission problem (the code is kept on the error)."""

MALFORMED_STATUSES: Final = frozenset({400, 422})
"""Statuses on which a payload saying "malformed" makes the failure a data-format error."""

EXCEPTION_RULES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    # Most specific first: the first isinstance match wins. "connect_error" and
    # "connection_lost" are refined by the cause chain (DNS, TLS, refused; framing).
    (httpx.ConnectTimeout, "connect_timeout"),
    (httpx.PoolTimeout, "pool_timeout"),
    (httpx.ReadTimeout, "read_timeout"),
    (httpx.WriteTimeout, "write_timeout"),
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connect_error"),
    (httpx.ProxyError, "proxy_error"),
    (httpx.RemoteProtocolError, "connection_lost"),
    (httpx.ReadError, "connection_lost"),
    (httpx.WriteError, "connection_lost"),
    (httpx.DecodingError, "malformed_response"),
    (httpx.TooManyRedirects, "too_many_redirects"),
    (httpx.NetworkError, "network_error"),
    (httpx.TransportError, "network_error"),
)
"""httpx exception type → rule; anything else is ``"other_exception"``."""

DNS_HINTS: Final = (
    "name or service not known",
    "nodename nor servname",
    "no address associated",
    "getaddrinfo failed",
    "temporary failure in name resolution",
    "name resolution",
)
"""Texts in a connect error's cause chain that mean the host name did not resolve."""

DISCONNECT_HINTS: Final = (
    "disconnected",
    "peer closed",
    "incomplete",
    "reset",
    "connection closed",
)
"""Texts that make an httpx ``RemoteProtocolError`` a lost connection rather than
broken framing."""


def rule_for_status(status: int) -> str:
    """The status row for ``status`` (payload rules are applied before this)."""
    if status in STATUS_RULES:
        return STATUS_RULES[status]
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "other_4xx"
    return "other_status"


# -- business or data format? Word-level rules over the payload's code, message and title --
#
# A 4xx payload reads as "the request was malformed" (data_format) when its code, message
# or title contains one of these. English text is split into lower-case words (camelCase,
# snake_case, kebab-case and dotted codes split too: "InvalidParameterValue" →
# invalid parameter value); "a", "an" and "the" are skipped; a word ending in "s" also
# matches without it. A phrase matches consecutive words; "<type>" stands for any of
# TYPE_WORDS. Chinese has no spaces: each term matches as a substring ("<type>" stands
# for any of ZH_TYPE_WORDS). Nothing else makes a body data_format: "This coupon is not
# valid for items in your cart" names no format, type, schema or required field, so it
# stays business.

DATA_FORMAT_WORDS: Final = frozenset(
    {
        "json", "xml", "syntax", "syntactically", "malformed", "parse", "parsing", "parser",
        "unparsable", "unparseable", "deserialize", "deserialization", "serialization",
        "schema", "format", "formatted", "validation", "unprocessable", "encoding", "missing",
    }
)  # fmt: skip
"""One of these words alone makes a payload read as data_format."""

TYPE_WORDS: Final = frozenset(
    {
        "integer", "int", "number", "numeric", "string", "boolean", "bool", "array", "list",
        "object", "float", "decimal", "date", "datetime", "timestamp", "uuid", "email", "url",
        "uri",
    }
)  # fmt: skip
"""What ``<type>`` stands for in `DATA_FORMAT_PHRASES`."""

DATA_FORMAT_PHRASES: Final = tuple(
    tuple(phrase.split())
    for phrase in (
        # a value of the wrong type or shape
        "must be <type>", "should be <type>", "expected <type>", "valid <type>",
        "invalid <type>", "is not <type>", "wrong type", "invalid type", "incorrect type",
        "type mismatch", "type error", "well formed",
        # a parameter, argument, field or body that does not parse or validate
        "invalid argument", "invalid parameter", "invalid param", "invalid input",
        "invalid body", "invalid data", "invalid value", "invalid field", "invalid character",
        "param error", "parameter error", "argument error",
        # a required member missing or empty
        "is required", "are required", "field required", "parameter required",
        "required field", "required parameter", "required param", "required argument",
        "required property", "cannot be blank", "can t be blank", "cannot be empty",
        "must not be empty", "must not be blank", "must not be null", "cannot be null",
        # a value of the wrong length
        "too long", "too short", "maximum length", "minimum length", "max length",
    )
)  # fmt: skip
"""Consecutive words (articles skipped) that make a payload read as data_format."""

ZH_TYPE_WORDS: Final = (
    "整数", "正整数", "数字", "数值", "字符串", "布尔", "数组", "对象", "日期", "时间戳", "小数",
)  # fmt: skip
"""What ``<type>`` stands for in `ZH_DATA_FORMAT_TERMS`."""

ZH_DATA_FORMAT_TERMS: Final = (
    # format, parsing, syntax, encoding
    "格式", "解析", "语法", "编码错误",
    # a value of the wrong type
    "类型错误", "类型不匹配", "类型不正确", "类型有误",
    "必须为<type>", "必须是<type>", "应为<type>", "不是有效的<type>",
    # a parameter that does not validate
    "参数错误", "参数有误", "参数无效", "无效参数", "无效的参数", "参数非法", "非法参数",
    "非法的参数", "参数不合法", "不合法的参数", "参数校验",
    # a required member missing or empty
    "必填", "必传", "必选参数", "缺少", "缺失", "不能为空", "不可为空", "不得为空",
    # a value of the wrong length
    "长度超过", "超出长度", "长度不能",
)  # fmt: skip
"""Chinese substrings that make a payload read as data_format."""
