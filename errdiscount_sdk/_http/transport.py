"""Transport glue: the ONLY module that drives httpx.

It builds httpx clients and requests, sends one attempt, and turns whatever
httpx returns or raises into either a successful `httpx.Response` or an
`ApiError` (through `build_error`, so the classification rules live in one
place). Moving to another HTTP client (an httpx fork) means rewriting this
module; the client façades, the retry loop and the hooks do not change.

Policy:
- Every attempt is bounded by its `Deadline` (the retry deadline or the
  per-attempt total): httpx's connect/write/pool/read timeouts are capped to
  the time left, and a body is read chunk by chunk and abandoned once the
  deadline has passed (so a body trickling one byte at a time ends within one
  read timeout of the deadline, instead of whenever the server is done).
- A failing status (>= 400) becomes an `ApiError` with its parsed payload; its
  body is read with a cap — at most `ERROR_BODY_CAP` bytes (the parser's cap
  plus one, so "too big" is still known), then the connection is closed. The
  error's ``response`` holds that prefix. A body cut by the deadline or a
  broken connection is classified on its status with what arrived.
- A success body is read whole (no streaming), unless the call streams
  (``Client.stream``): then the caller reads it, and a transport failure while
  reading is raised as an `ApiError` too.
- With ``expect_json``, a success whose body is not JSON (or is larger than
  ``max_json_bytes``, or fails the validator) raises `InvalidResponseBody`.
- Misuse that no retry can fix (a malformed URL, an unsupported scheme, an
  invalid ``Idempotency-Key``) raises `ConfigurationError`.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx

from .._model.classify import build_error
from .._model.errors import ApiError, ConfigurationError
from .._model.parse import MAX_BODY_BYTES, parse_error_payload
from .._model.wire import IDEMPOTENCY_KEY_HEADER
from .deadline import Deadline
from .sentinel import UseClientDefault

__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "DEFAULT_TIMEOUT",
    "ERROR_BODY_CAP",
    "Call",
    "TimeoutTypes",
    "Validator",
    "asend",
    "build_request",
    "check_idempotency_key",
    "check_response",
    "check_timeout",
    "make_async_client",
    "make_sync_client",
    "new_idempotency_key",
    "prepare",
    "send",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_JSON_BYTES = 32 * 1024 * 1024
ERROR_BODY_CAP = MAX_BODY_BYTES + 1
"""The most of an error body ever read: the parser's cap, plus one byte to know it was over."""
TimeoutTypes = float | httpx.Timeout | None
Validator = Callable[[Any], object]
"""Called with the decoded JSON body; raising or returning ``False`` rejects it."""
Refine = Callable[[ApiError], ApiError]
"""Turns one attempt's `ApiError` into a more specific one (see `ClientBase._refine_error`)."""

# Methods whose retries are only safe with a key: the client adds one to these
# when it may resend them (``retry_non_idempotent=True``).
KEYED_METHODS = frozenset({"POST", "PATCH"})
IDEMPOTENCY_KEY = IDEMPOTENCY_KEY_HEADER
_MAX_KEY_CHARS = 255
# The wait granted to an operation whose deadline has already passed: the
# attempt fails at once with the stage's own timeout error.
_NO_TIME_LEFT = 0.001
# Headers that describe the wire form of a body the capped copy holds decoded.
_WIRE_FORM_HEADERS = frozenset({"content-encoding", "transfer-encoding"})


def _unchanged(error: ApiError) -> ApiError:
    return error


def new_idempotency_key() -> str:
    """A fresh random key (128 bits; unguessable, so keys never collide across clients)."""
    import uuid  # only calls that may resend a POST pay for loading it

    return str(uuid.uuid4())


def check_idempotency_key(key: object) -> str:
    """Return ``key`` if it is a valid ``Idempotency-Key`` value (1-255 printable ASCII).

    Raises:
        ConfigurationError: anything else (a number, an empty string, a newline).
    """
    if (
        not isinstance(key, str)
        or not 0 < len(key) <= _MAX_KEY_CHARS
        or not all(" " <= c <= "~" for c in key)
    ):
        raise ConfigurationError(
            f"idempotency_key must be 1-{_MAX_KEY_CHARS} printable ASCII characters, "
            f"got {type(key).__name__}"
        )
    return key


def _seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not math.isnan(value)
        and value >= 0
    )


def check_timeout(timeout: object, name: str = "timeout") -> None:
    """Accept what httpx accepts as a timeout, checked now rather than on the first call.

    A number of seconds (>= 0), None (no timeout), an `httpx.Timeout`, or a
    4-tuple (connect, read, write, pool) of such numbers or None.

    Raises:
        ConfigurationError: anything else (``"5"``, a negative number, NaN).
    """
    if timeout is None or isinstance(timeout, httpx.Timeout) or _seconds(timeout):
        return
    if (
        isinstance(timeout, tuple)
        and len(timeout) == 4
        and all(part is None or _seconds(part) for part in timeout)
    ):
        return
    raise ConfigurationError(
        f"{name} must be seconds >= 0, None, an httpx.Timeout or a 4-tuple of those, "
        f"got {timeout!r}"
    )


def make_sync_client(
    *,
    base_url: str | httpx.URL,
    timeout: TimeoutTypes,
    headers: Mapping[str, str] | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    check_timeout(timeout)
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
    check_timeout(timeout)
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
        ConfigurationError: the URL, the key or another argument is invalid.
    """
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    if "timeout" in kwargs:
        check_timeout(kwargs["timeout"])
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


def _httpx_default(value: object) -> Any:
    return httpx.USE_CLIENT_DEFAULT if isinstance(value, UseClientDefault) else value


@attrs.frozen
class Call:
    """One call's request and how each of its attempts is sent and checked.

    Attributes:
        request: the request every attempt sends.
        timeouts: the per-operation timeouts it was built with (the attempt's
            deadline caps them, attempt by attempt).
        replayable: the body is in memory and can be sent again (False for a
            generator, a file or another stream: sent at most once once it may
            have reached the server).
        stream: leave the success body to the caller (`Client.stream`).
    """

    request: httpx.Request
    timeouts: Mapping[str, float | None]
    replayable: bool
    expect_json: bool = False
    validator: Validator | None = None
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    refine: Refine = _unchanged
    auth: Any = httpx.USE_CLIENT_DEFAULT
    follow_redirects: Any = httpx.USE_CLIENT_DEFAULT
    stream: bool = False


def prepare(
    http_client: httpx.Client | httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    add_idempotency_key: bool,
    idempotency_key: str | None,
    auth: object,
    follow_redirects: object,
    stream: bool,
    expect_json: bool,
    validator: Validator | None,
    max_json_bytes: int,
    refine: Refine,
    kwargs: dict[str, Any],
) -> Call:
    """Build the request of a call (see `build_request`) and its `Call`.

    Raises:
        ConfigurationError: an invalid URL, key, timeout or argument.
    """
    if not isinstance(follow_redirects, bool | UseClientDefault):
        raise ConfigurationError("follow_redirects must be a bool")
    request = build_request(
        http_client,
        method,
        url,
        add_idempotency_key=False,
        idempotency_key=idempotency_key,
        **kwargs,
    )
    if (
        add_idempotency_key
        and request.method in KEYED_METHODS
        and IDEMPOTENCY_KEY not in request.headers
    ):
        request.headers[IDEMPOTENCY_KEY] = new_idempotency_key()
    return Call(
        request=request,
        timeouts=dict(request.extensions.get("timeout", {})),
        replayable=isinstance(request.stream, httpx.ByteStream),
        expect_json=expect_json,
        validator=validator,
        max_json_bytes=max_json_bytes,
        refine=refine,
        auth=_httpx_default(auth),
        follow_redirects=_httpx_default(follow_redirects),
        stream=stream,
    )


def _bound_timeouts(call: Call, deadline: Deadline | None) -> None:
    """Cap each per-operation timeout of this attempt to the time left."""
    if deadline is None:
        return
    left = max(deadline.remaining(), _NO_TIME_LEFT)
    limits = [limit for limit in call.timeouts.values() if limit is not None]
    if limits and len(limits) == len(call.timeouts) and max(limits) <= left:
        # Far from the deadline (the usual case): the configured timeouts stand.
        call.request.extensions["timeout"] = call.timeouts
        return
    call.request.extensions["timeout"] = {
        stage: left if limit is None else min(limit, left) for stage, limit in call.timeouts.items()
    } or {"connect": left, "read": left, "write": left, "pool": left}


def send(http_client: httpx.Client, call: Call, deadline: Deadline | None = None) -> httpx.Response:
    """Send one attempt; return the response of a success, raise `ApiError` otherwise."""
    request = call.request
    _bound_timeouts(call, deadline)
    try:
        response = http_client.send(
            request, stream=True, auth=call.auth, follow_redirects=call.follow_redirects
        )
    except httpx.HTTPError as exc:
        # build_error keeps the httpx exception as __cause__ for debugging.
        raise _error_from_exception(exc, request, call.refine)  # noqa: B904
    except httpx.StreamError:
        raise _unreplayable() from None
    if response.status_code >= 400:
        body = _read_capped(response, deadline)
        raise call.refine(_status_error(response, body, request))
    if call.stream:
        response.stream = _Translating(response.stream, request)
        return response
    if deadline is not None:
        response.stream = _Bounded(response.stream, deadline, request)
    try:
        response.read()
    except httpx.HTTPError as exc:
        response.close()
        raise _error_from_exception(exc, request, call.refine)  # noqa: B904
    return _checked_success(response, call)


async def asend(
    http_client: httpx.AsyncClient, call: Call, deadline: Deadline | None = None
) -> httpx.Response:
    """The async twin of `send`."""
    request = call.request
    _bound_timeouts(call, deadline)
    try:
        response = await http_client.send(
            request, stream=True, auth=call.auth, follow_redirects=call.follow_redirects
        )
    except httpx.HTTPError as exc:
        # build_error keeps the httpx exception as __cause__ for debugging.
        raise _error_from_exception(exc, request, call.refine)  # noqa: B904
    except httpx.StreamError:
        raise _unreplayable() from None
    if response.status_code >= 400:
        body = await _aread_capped(response, deadline)
        raise call.refine(_status_error(response, body, request))
    if call.stream:
        response.stream = _AsyncTranslating(response.stream, request)
        return response
    if deadline is not None:
        response.stream = _AsyncBounded(response.stream, deadline, request)
    try:
        await response.aread()
    except httpx.HTTPError as exc:
        await response.aclose()
        raise _error_from_exception(exc, request, call.refine)  # noqa: B904
    return _checked_success(response, call)


# -- reading bodies within bounds ---------------------------------------------------------


def _past_deadline(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(
        "the attempt's deadline passed while the body was being read", request=request
    )


class _Bounded(httpx.SyncByteStream):
    """A response stream abandoned once the attempt's deadline has passed."""

    def __init__(self, inner: Any, deadline: Deadline, request: httpx.Request) -> None:
        self._inner, self._deadline, self._request = inner, deadline, request

    def __iter__(self) -> Iterator[bytes]:
        at, clock = self._deadline.at, self._deadline.clock
        for chunk in self._inner:
            if clock() >= at:
                raise _past_deadline(self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncBounded(httpx.AsyncByteStream):
    def __init__(self, inner: Any, deadline: Deadline, request: httpx.Request) -> None:
        self._inner, self._deadline, self._request = inner, deadline, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        at, clock = self._deadline.at, self._deadline.clock
        async for chunk in self._inner:
            if clock() >= at:
                raise _past_deadline(self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Translating(httpx.SyncByteStream):
    """The caller's stream (`Client.stream`): transport failures become `ApiError`s."""

    def __init__(self, inner: Any, request: httpx.Request) -> None:
        self._inner, self._request = inner, request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except httpx.HTTPError as exc:
            raise build_error(exc, request=self._request) from exc

    def close(self) -> None:
        self._inner.close()


class _AsyncTranslating(httpx.AsyncByteStream):
    def __init__(self, inner: Any, request: httpx.Request) -> None:
        self._inner, self._request = inner, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.HTTPError as exc:
            raise build_error(exc, request=self._request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Prefix:
    """Collects at most `ERROR_BODY_CAP` decoded bytes."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep what fits; False once the cap is reached (stop reading)."""
        take = chunk[: ERROR_BODY_CAP - self.size]
        self.parts.append(take)
        self.size += len(take)
        return self.size < ERROR_BODY_CAP

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _read_capped(response: httpx.Response, deadline: Deadline | None) -> bytes:
    prefix = _Prefix()
    try:
        for chunk in response.iter_bytes():
            if not prefix.add(chunk) or (deadline is not None and deadline.passed()):
                break
    except httpx.HTTPError:
        pass  # cut short (broken connection, bad encoding): classify on the status
    finally:
        response.close()
    return prefix.bytes()


async def _aread_capped(response: httpx.Response, deadline: Deadline | None) -> bytes:
    prefix = _Prefix()
    try:
        async for chunk in response.aiter_bytes():
            if not prefix.add(chunk) or (deadline is not None and deadline.passed()):
                break
    except httpx.HTTPError:
        pass  # cut short (broken connection, bad encoding): classify on the status
    finally:
        await response.aclose()
    return prefix.bytes()


def _capped_copy(response: httpx.Response, body: bytes, request: httpx.Request) -> httpx.Response:
    """The failed response as the error carries it: same status and headers, the read prefix."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in _WIRE_FORM_HEADERS
    ]
    extensions = {
        key: value
        for key, value in response.extensions.items()
        if key in ("http_version", "reason_phrase")
    }
    copy = httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=request,
        history=list(response.history),
        extensions=extensions,
    )
    with contextlib.suppress(RuntimeError):  # a response never timed (a bare transport)
        copy.elapsed = response.elapsed
    return copy


def _status_error(response: httpx.Response, body: bytes, request: httpx.Request) -> ApiError:
    copy = _capped_copy(response, body, request)
    payload = parse_error_payload(
        body, content_type=response.headers.get("content-type"), status=response.status_code
    )
    return build_error(copy, payload=payload, request=request)


def _checked_success(response: httpx.Response, call: Call) -> httpx.Response:
    if call.expect_json or call.validator is not None:
        _check_json(response, call.request, call.validator, call.max_json_bytes)
    return response


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

    Used by the requests integration, which translates its responses into
    `httpx.Response` objects first (with the error body already capped).
    """
    if response.status_code >= 400:
        body = response.content[:ERROR_BODY_CAP]
        raise refine(_status_error(response, body, request))
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
