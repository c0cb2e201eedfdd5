"""requests integration: a `requests.Session` with errdiscount's errors, retries and hooks.

Install with the ``requests`` extra (``pip install 'errdiscount-sdk[requests]'``).

    from errdiscount_sdk.requests import Session

    with Session(timeout=5.0) as session:
        response = session.get("https://api.example.com/items")  # a requests.Response

Every call goes through the same machinery as `errdiscount_sdk.Client`: the
`RetryPolicy` and its budget, the ``Idempotency-Key`` on POST/PATCH, the
classification (`classify`), payload parsing, verified discounts, alert URL
policy and the four hooks. Errors are the same `ApiError` classes; their
``request`` and ``response`` are translated into `httpx.Request` /
`httpx.Response` so there is one typed shape whichever HTTP library you use.
requests' own exceptions never escape.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

try:
    import requests
    import requests.exceptions as rex
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "errdiscount_sdk.requests needs requests: pip install 'errdiscount-sdk[requests]'"
    ) from None

from ._http.client import ClientBase, RetryArg
from ._http.deadline import Deadline
from ._http.enrich import SupportsVerify
from ._http.hooks import AlertHook, DiscountHook, ErrorHook, RetryHook
from ._http.sentinel import USE_CLIENT_DEFAULT
from ._http.transport import (
    DEFAULT_MAX_JSON_BYTES,
    DEFAULT_TIMEOUT,
    ERROR_BODY_CAP,
    IDEMPOTENCY_KEY,
    KEYED_METHODS,
    Validator,
    check_idempotency_key,
    check_response,
    new_idempotency_key,
)
from ._model.alert_url import AlertUrlPolicy
from ._model.checks import is_real
from ._model.classify import build_error
from ._model.errors import ApiError, ConfigurationError
from ._report.reporter import ErrorReporter

__all__ = ["Session"]

# Hop-by-hop and encoding headers describe the wire form requests already
# decoded; keeping them would make httpx decode the body a second time.
_DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


class Session(requests.Session):
    """A `requests.Session` whose calls raise typed `ApiError`s and retry safely.

    Args:
        timeout: default per-attempt timeout in seconds (requests has none;
            an unbounded wait is never what a retrying client wants).
            A ``timeout=`` passed to a call wins.
        retry, alert_policy, verifier, on_retry, on_error, on_discount,
        on_alert, idempotency_keys, expect_json, max_json_bytes,
        retry_non_idempotent, attempt_timeout, reporter: as for `errdiscount_sdk.Client`.

    Bounds: each attempt's connect and read timeouts are capped to the time
    left before the policy's deadline (or ``attempt_timeout``), and error bodies
    are read with the same cap as `Client` (then the connection is closed). A
    success body is read by requests itself, bounded by the read timeout per
    chunk only.

    Raises:
        ConfigurationError: invalid arguments (at construction), or an invalid
            URL or a body that cannot be resent (per call).

    Success returns the ordinary `requests.Response`. Calls also accept
    ``idempotency_key=``, ``expect_json=``, ``validator=`` and ``endpoint=``
    (the route template the reporter records).
    """

    def __init__(
        self,
        *,
        timeout: float | tuple[float, float] | None = DEFAULT_TIMEOUT,
        retry: RetryArg = USE_CLIENT_DEFAULT,
        alert_policy: AlertUrlPolicy | None = None,
        verifier: SupportsVerify | None = None,
        on_retry: RetryHook | None = None,
        on_error: ErrorHook | None = None,
        on_discount: DiscountHook | None = None,
        on_alert: AlertHook | None = None,
        idempotency_keys: bool = True,
        expect_json: bool = False,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        retry_non_idempotent: bool = False,
        attempt_timeout: float | None = None,
        reporter: ErrorReporter | None = None,
    ) -> None:
        super().__init__()
        self.errdiscount = ClientBase(
            retry=retry,
            alert_policy=alert_policy,
            verifier=verifier,
            on_retry=on_retry,
            on_error=on_error,
            on_discount=on_discount,
            on_alert=on_alert,
            idempotency_keys=idempotency_keys,
            expect_json=expect_json,
            max_json_bytes=max_json_bytes,
            retry_non_idempotent=retry_non_idempotent,
            attempt_timeout=attempt_timeout,
            reporter=reporter,
        )
        given: object = timeout
        if given is not None and not (
            is_real(given)
            or (isinstance(given, tuple) and len(given) == 2 and all(map(is_real, given)))
        ):
            raise ConfigurationError(
                f"timeout must be seconds, a (connect, read) pair or None, got {timeout!r}"
            )
        self.timeout = timeout

    def request(  # type: ignore[override]
        self,
        method: str | bytes,
        url: str | bytes,
        *,
        idempotency_key: str | None = None,
        expect_json: bool | None = None,
        validator: Validator | None = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Mapping[str, str] | None = None,
        stream: bool | None = None,
        verify: bool | str | None = None,
        cert: Any = None,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request with errdiscount's retries; return the response or raise.

        Raises:
            ApiError: the classified failure of the last attempt, with ``.attempts``.
            ConfigurationError: an invalid URL or argument.
        """
        core = self.errdiscount
        try:
            prepared = self.prepare_request(requests.Request(method=method, url=url, **kwargs))
        except (rex.InvalidURL, rex.MissingSchema, rex.InvalidSchema, rex.InvalidHeader) as exc:
            raise ConfigurationError(f"invalid request: {exc}") from None
        if idempotency_key is not None:
            prepared.headers[IDEMPOTENCY_KEY] = check_idempotency_key(idempotency_key)
        elif (
            core.idempotency_keys
            and core.retry_non_idempotent
            and (prepared.method or "").upper() in KEYED_METHODS
            and IDEMPOTENCY_KEY not in prepared.headers
        ):
            prepared.headers[IDEMPOTENCY_KEY] = new_idempotency_key()
        settings = self.merge_environment_settings(
            prepared.url, dict(proxies or {}), stream, verify, cert
        )
        per_stage = self.timeout if timeout is None else timeout
        send_kwargs: dict[str, Any] = {"allow_redirects": allow_redirects, **settings}
        caller_streams = bool(send_kwargs.pop("stream", False))
        mirror = _to_httpx_request(prepared)
        replayable = prepared.body is None or isinstance(prepared.body, bytes | str)
        want_json = core.expect_json if expect_json is None else expect_json
        loop = core._loop(mirror, replayable=replayable)
        started = time.perf_counter()
        try:
            for attempt in loop:
                with attempt:
                    bounded = _bounded_timeout(per_stage, attempt.deadline)
                    try:
                        response = self.send(
                            prepared.copy(), stream=True, timeout=bounded, **send_kwargs
                        )
                        if response.status_code >= 400:
                            body = _read_capped(response)
                        elif not caller_streams:
                            body = response.content
                        else:
                            body = b""
                    except rex.RequestException as exc:
                        raise _error_from_exception(exc, mirror) from None
                    check_response(
                        _to_httpx_response(response, mirror, body),
                        mirror,
                        expect_json=want_json and not caller_streams,
                        validator=None if caller_streams else validator,
                        max_json_bytes=core.max_json_bytes,
                    )
                    core.report(
                        mirror,
                        endpoint=endpoint,
                        started=started,
                        attempts=loop.attempts,
                        status=response.status_code,
                    )
                    return response
        except ApiError as error:
            final = core.fail_sync(loop, error)
            core.report(
                mirror, endpoint=endpoint, started=started, attempts=loop.attempts, error=final
            )
            raise final from error.__cause__
        raise AssertionError("unreachable: the retry loop ended without an outcome")


def _bounded_timeout(timeout: Any, deadline: Deadline | None) -> Any:
    """requests' (connect, read) timeout of one attempt, capped to the time left."""
    if deadline is None:
        return timeout
    left = max(deadline.remaining(), 0.001)
    if timeout is None:
        return (left, left)
    if isinstance(timeout, tuple):
        return tuple(left if part is None else min(part, left) for part in timeout)
    return min(timeout, left)


def _read_capped(response: requests.Response) -> bytes:
    """At most `ERROR_BODY_CAP` bytes of an error body, then the connection is closed."""
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            take = chunk[: ERROR_BODY_CAP - size]
            parts.append(take)
            size += len(take)
            if size >= ERROR_BODY_CAP:
                break
    except rex.RequestException:
        pass  # cut short: classify on the status with what arrived
    finally:
        response.close()
    return b"".join(parts)


def _to_httpx_request(prepared: requests.PreparedRequest) -> httpx.Request:
    body = prepared.body if isinstance(prepared.body, bytes | str) else None
    return httpx.Request(
        prepared.method or "GET",
        prepared.url or "",
        headers=list(prepared.headers.items()),
        content=body,
    )


def _to_httpx_response(
    response: requests.Response, request: httpx.Request, body: bytes
) -> httpx.Response:
    headers = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in _DROPPED_HEADERS
    ]
    return httpx.Response(response.status_code, headers=headers, content=body, request=request)


def _error_from_exception(
    exc: rex.RequestException, request: httpx.Request
) -> ApiError | ConfigurationError:
    """Map a requests exception onto the httpx one it corresponds to, then classify it."""
    if isinstance(exc, rex.InvalidURL | rex.MissingSchema | rex.InvalidSchema | rex.InvalidHeader):
        return ConfigurationError(f"invalid request: {exc}")
    message = str(exc)
    equivalent: httpx.HTTPError
    if isinstance(exc, rex.ConnectTimeout):
        equivalent = httpx.ConnectTimeout(message, request=request)
    elif isinstance(exc, rex.ReadTimeout):
        equivalent = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, rex.Timeout):
        equivalent = httpx.TimeoutException(message, request=request)
    elif isinstance(exc, rex.ProxyError):
        equivalent = httpx.ProxyError(message, request=request)
    elif isinstance(exc, rex.ChunkedEncodingError):
        equivalent = httpx.RemoteProtocolError(f"incomplete body: {message}", request=request)
    elif isinstance(exc, rex.ContentDecodingError):
        equivalent = httpx.DecodingError(message, request=request)
    elif isinstance(exc, rex.TooManyRedirects):
        equivalent = httpx.TooManyRedirects(message, request=request)
    elif isinstance(exc, rex.ConnectionError):
        # requests folds "could not connect" and "lost mid-exchange" into one
        # class; urllib3's "Connection aborted" means the request may be sent.
        if "connection aborted" in message.lower() or "remotedisconnected" in message.lower():
            equivalent = httpx.ReadError(f"connection reset: {message}", request=request)
        else:
            equivalent = httpx.ConnectError(message, request=request)
    else:
        equivalent = httpx.TransportError(message, request=request)
    equivalent.__cause__ = exc
    return build_error(equivalent, request=request)
