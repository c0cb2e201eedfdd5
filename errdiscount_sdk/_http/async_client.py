"""`AsyncClient`: the asyncio twin of `Client` (same arguments, same policy).

Hooks may be plain functions or coroutine functions; the verifier's
``verify`` may be either too. See `Client` for the call's life cycle.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from .._model.alert_url import AlertUrlPolicy
from .._model.errors import ApiError, ConfigurationError
from .._report.reporter import ErrorReporter
from . import transport as _transport
from .client import AuthArg, ClientBase, RedirectsArg, RetryArg, shown_url
from .enrich import SupportsVerify, afindings_for
from .hooks import AlertHook, DiscountHook, ErrorHook, RetryHook, acall_hook
from .retry import RetryLoop
from .sentinel import USE_CLIENT_DEFAULT
from .transport import DEFAULT_MAX_JSON_BYTES, DEFAULT_TIMEOUT, Call, TimeoutTypes, Validator

__all__ = ["AsyncClient"]


class AsyncClient(ClientBase):
    """An asyncio HTTP client with typed errors, safe retries and compensation hooks.

    Takes the same arguments as `Client`, except ``transport`` (an
    ``httpx.AsyncBaseTransport``) and ``http_client`` (an ``httpx.AsyncClient``).
    Hooks may be sync or async; one that raises is logged and never breaks the call.

    Raises:
        ConfigurationError: inconsistent or invalid arguments.
    """

    def __init__(
        self,
        *,
        base_url: str | httpx.URL = "",
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        retry: RetryArg = USE_CLIENT_DEFAULT,
        alert_policy: AlertUrlPolicy | None = None,
        verifier: SupportsVerify | None = None,
        on_retry: RetryHook | None = None,
        on_error: ErrorHook | None = None,
        on_discount: DiscountHook | None = None,
        on_alert: AlertHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        idempotency_keys: bool = True,
        expect_json: bool = False,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        retry_non_idempotent: bool = False,
        attempt_timeout: float | None = None,
        reporter: ErrorReporter | None = None,
    ) -> None:
        super().__init__(
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
        self._check_client_args(http_client, transport, base_url=base_url, headers=headers)
        _transport.check_timeout(timeout)
        if http_client is not None:
            if not isinstance(http_client, httpx.AsyncClient):
                raise ConfigurationError("http_client must be an httpx.AsyncClient")
            self._http, self._owns_http = http_client, False
        else:
            self._http = _transport.make_async_client(
                base_url=base_url, timeout=timeout, headers=headers, transport=transport
            )
            self._owns_http = True

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        idempotency_key: str | None = None,
        expect_json: bool | None = None,
        validator: Validator | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: RedirectsArg = USE_CLIENT_DEFAULT,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; return the successful response or raise its `ApiError`.

        Same arguments as `Client.request`.

        Raises:
            ApiError: the classified failure of the last attempt, with
                ``.attempts`` and ``.retry_stopped_by``.
            ConfigurationError: an invalid URL or argument.
        """
        call = self._prepare(
            self._http,
            method,
            url,
            idempotency_key=idempotency_key,
            expect_json=expect_json,
            validator=validator,
            auth=auth,
            follow_redirects=follow_redirects,
            stream=False,
            kwargs=kwargs,
        )
        return await self._run(call, endpoint)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        idempotency_key: str | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: RedirectsArg = USE_CLIENT_DEFAULT,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """``async with client.stream("GET", url) as response:``; see `Client.stream`."""
        call = self._prepare(
            self._http,
            method,
            url,
            idempotency_key=idempotency_key,
            expect_json=False,
            validator=None,
            auth=auth,
            follow_redirects=follow_redirects,
            stream=True,
            kwargs=kwargs,
        )
        response = await self._run(call, endpoint)
        try:
            yield response
        finally:
            await response.aclose()

    async def _run(self, call: Call, endpoint: str | None) -> httpx.Response:
        loop = self._loop(call.request, replayable=call.replayable)
        started = time.perf_counter()
        try:
            async for attempt in loop:
                response: httpx.Response | None = None
                with attempt:
                    response = await _transport.asend(self._http, call, attempt.deadline)
                if response is not None:
                    self.report(
                        call.request,
                        endpoint=endpoint,
                        started=started,
                        attempts=loop.attempts,
                        status=response.status_code,
                    )
                    return response
        except ApiError as error:
            final = await self.fail_async(loop, error)
            self.report(
                call.request,
                endpoint=endpoint,
                started=started,
                attempts=loop.attempts,
                error=final,
            )
            raise final from error.__cause__
        raise AssertionError("unreachable: the retry loop ended without an outcome")

    async def fail_async(self, loop: RetryLoop, error: ApiError) -> ApiError:
        """`ClientBase.fail_sync` for asyncio: the verifier and the hooks may be async."""
        findings = await afindings_for(
            error.payload, self.verifier, self.alert_policy, error.error_type
        )
        final = self._final(loop, error, findings)
        if findings.offered_discount is not None:
            await acall_hook("on_discount", self.on_discount, findings.offered_discount, final)
        if findings.alert_url is not None:
            await acall_hook("on_alert", self.on_alert, findings.alert_url, final)
        await acall_hook("on_error", self.on_error, final)
        return final

    async def get(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("HEAD", url, ...)``."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("OPTIONS", url, ...)``."""
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("POST", url, ...)``; gets an ``Idempotency-Key`` unless disabled."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PUT", url, ...)``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PATCH", url, ...)``; gets an ``Idempotency-Key`` unless disabled."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("DELETE", url, ...)``."""
        return await self.request("DELETE", url, **kwargs)

    async def aclose(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={shown_url(self._http.base_url)!r})"
