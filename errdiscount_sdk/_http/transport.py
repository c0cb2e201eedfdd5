"""Transport glue: the ONLY module that drives httpx.

It builds httpx clients and requests, sends one attempt, and turns whatever
httpx returns or raises into either a successful `httpx.Response` or an
`ApiError` (through `build_error`, so the classification rules live in one
place). Moving to another HTTP client (an httpx fork) means rewriting this
module; the client façades, the retry loop and the hooks do not change.

Policy:
- Each attempt reads the whole body (no streaming), so a connection reset
  mid-body is an attempt failure like any other.
- A failing status (>= 400) becomes an `ApiError` with its parsed payload.
- With ``expect_json``, a success whose body is not JSON (or is larger than
  ``max_json_bytes``, or fails the validator) raises `InvalidResponseBody`.
- Misuse that no retry can fix (a malformed URL, an unsupported scheme, a
  body stream that cannot be replayed) raises `ConfigurationError`.
"""

from __future__ import annotations

import json as jsonlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .._model.classify import build_error
from .._model.errors import ApiError, ConfigurationError
from .._model.parse import parse_error_payload
from .._model.wire import IDEMPOTENCY_KEY_HEADER

__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "DEFAULT_TIMEOUT",
    "TimeoutTypes",
    "Validator",
    "asend",
    "build_request",
    "make_async_client",
    "make_sync_client",
    "new_idempotency_key",
    "send",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_JSON_BYTES = 32 * 1024 * 1024
TimeoutTypes = float | httpx.Timeout | None
Validator = Callable[[Any], object]
"""Called with the decoded JSON body; raising or returning ``False`` rejects it."""
Refine = Callable[[ApiError], ApiError]
"""Turns one attempt's `ApiError` into a more specific one (see `ClientBase._refine_error`)."""


def _unchanged(error: ApiError) -> ApiError:
    return error


# Methods whose retries are only safe with a key: the client adds one to these.
KEYED_METHODS = frozenset({"POST", "PATCH"})
IDEMPOTENCY_KEY = IDEMPOTENCY_KEY_HEADER


def new_idempotency_key() -> str:
    """A fresh random key (128 bits; unguessable, so keys never collide across clients)."""
    return str(uuid.uuid4())


def make_sync_client(
    *,
    base_url: str | httpx.URL,
    timeout: TimeoutTypes,
    headers: Mapping[str, str] | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    try:
        return httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid client settings: {exc}") from None


def make_async_client(
    *,
    base_url: str | httpx.URL,
    timeout: TimeoutTypes,
    headers: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    try:
        return httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid client settings: {exc}") from None


def build_request(
    http_client: httpx.Client | httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    add_idempotency_key: bool,
    idempotency_key: str | None = None,
    **kwargs: Any,
) -> httpx.Request:
    """Build the one request every attempt of a call resends.

    The ``Idempotency-Key`` (the caller's, or a fresh one for POST/PATCH when
    ``add_idempotency_key``) is set here, before the first attempt, so every
    retry carries the same key.

    Raises:
        ConfigurationError: the URL or an argument is invalid.
    """
    try:
        request = http_client.build_request(method, url, **kwargs)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid request: {exc}") from None
    if idempotency_key is not None:
        request.headers[IDEMPOTENCY_KEY] = idempotency_key
    elif (
        add_idempotency_key
        and request.method in KEYED_METHODS
        and IDEMPOTENCY_KEY not in request.headers
    ):
        request.headers[IDEMPOTENCY_KEY] = new_idempotency_key()
    return request


def send(
    http_client: httpx.Client,
    request: httpx.Request,
    *,
    expect_json: bool = False,
    validator: Validator | None = None,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    refine: Refine = _unchanged,
) -> httpx.Response:
    """Send one attempt; return the response of a success, raise `ApiError` otherwise."""
    try:
        response = http_client.send(request)
    except httpx.HTTPError as exc:
        # build_error keeps the httpx exception as __cause__ for debugging.
        raise _error_from_exception(exc, request, refine)  # noqa: B904
    except httpx.StreamError:
        raise _unreplayable() from None
    return check_response(
        response,
        request,
        expect_json=expect_json,
        validator=validator,
        max_json_bytes=max_json_bytes,
        refine=refine,
    )


async def asend(
    http_client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    expect_json: bool = False,
    validator: Validator | None = None,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    refine: Refine = _unchanged,
) -> httpx.Response:
    """The async twin of `send`."""
    try:
        response = await http_client.send(request)
    except httpx.HTTPError as exc:
        # build_error keeps the httpx exception as __cause__ for debugging.
        raise _error_from_exception(exc, request, refine)  # noqa: B904
    except httpx.StreamError:
        raise _unreplayable() from None
    return check_response(
        response,
        request,
        expect_json=expect_json,
        validator=validator,
        max_json_bytes=max_json_bytes,
        refine=refine,
    )


def check_response(
    response: httpx.Response,
    request: httpx.Request,
    *,
    expect_json: bool = False,
    validator: Validator | None = None,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    refine: Refine = _unchanged,
) -> httpx.Response:
    """Return a successful, fully read ``response``; raise its `ApiError` otherwise.

    Also used by the requests integration, which translates its responses
    into `httpx.Response` objects first.
    """
    if response.status_code >= 400:
        payload = parse_error_payload(
            response.content,
            content_type=response.headers.get("content-type"),
            status=response.status_code,
        )
        raise refine(build_error(response, payload=payload, request=request))
    if expect_json or validator is not None:
        _check_json(response, request, validator, max_json_bytes)
    return response


def _check_json(
    response: httpx.Response,
    request: httpx.Request,
    validator: Validator | None,
    max_json_bytes: int,
) -> None:
    body = response.content
    cause: BaseException | None = None
    valid = len(body) <= max_json_bytes
    if valid:
        try:
            data = jsonlib.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, depth
            valid, cause = False, exc
    if valid and validator is not None:
        try:
            valid = validator(data) is not False
        except Exception as exc:  # the user's validator may raise anything
            valid, cause = False, exc
    if not valid:
        raise build_error(response, request=request, invalid_body=True) from cause


def _error_from_exception(
    exc: httpx.HTTPError, request: httpx.Request, refine: Refine
) -> ApiError | ConfigurationError:
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        # The caller's URL or headers are wrong: no retry can fix it.
        return ConfigurationError(f"invalid request: {exc}")
    return refine(build_error(exc, request=request))


def _unreplayable() -> ConfigurationError:
    return ConfigurationError(
        "the request body is a one-shot stream and cannot be resent; pass bytes "
        "(content=...) or disable retries for this call"
    )
