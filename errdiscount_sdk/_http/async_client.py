"""`AsyncClient`: the asyncio twin of `Client` (same arguments, same policy).

Hooks may be plain functions or coroutine functions; the verifier's
``verify`` may be either too. See `Client` for the call's life cycle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from .._model.alert_url import AlertUrlPolicy
from .._model.errors import ApiError, ConfigurationError
from .._report.reporter import ErrorReporter
from . import transport as _transport
from .client import DEFAULT_RETRY, ClientBase, shown_url
from .enrich import SupportsVerify, adiscount_for, alert_url_for
from .hooks import Hook, acall_hook
from .retry import RetryPolicy, run_async
from .transport import DEFAULT_MAX_JSON_BYTES, DEFAULT_TIMEOUT, TimeoutTypes, Validator

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
        retry: RetryPolicy | None = DEFAULT_RETRY,
        alert_policy: AlertUrlPolicy | None = None,
        verifier: SupportsVerify | None = None,
        on_retry: Hook | None = None,
        on_error: Hook | None = None,
        on_discount: Hook | None = None,
        on_alert: Hook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        idempotency_keys: bool = True,
        expect_json: bool = False,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        reporter: ErrorReporter | None = None,
    ) -> None:
        super().__init__(
            reporter=reporter,
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
        )
        self._check_client_args(http_client, transport, base_url=base_url, headers=headers)
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
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; return the successful response or raise its `ApiError`.

        Same arguments as `Client.request`.

        Raises:
            ApiError: the classified failure of the last attempt, with ``.attempts``.
            ConfigurationError: an invalid URL or argument.
        """
        request = self._build(self._http, method, url, idempotency_key, kwargs)
        want_json = self.expect_json if expect_json is None else expect_json
        http, max_json = self._http, self.max_json_bytes
        started, attempts = time.perf_counter(), 0

        async def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            try:
                return await _transport.asend(
                    http,
                    request,
                    expect_json=want_json,
                    validator=validator,
                    max_json_bytes=max_json,
                )
            except ApiError as error:
                refined = self._refine_error(error)
                if refined is error:
                    raise
                raise refined from error.__cause__

        try:
            response = await run_async(self.retry, attempt, on_retry=self.on_retry)
        except ApiError as error:
            await self._finish(error)
            self._report(
                request, endpoint=endpoint, started=started, attempts=attempts, error=error
            )
            raise
        self._report(
            request,
            endpoint=endpoint,
            started=started,
            attempts=attempts,
            status=response.status_code,
        )
        return response

    async def _finish(self, error: ApiError) -> None:
        self._log_failure(error)
        token = await adiscount_for(error, self.verifier)
        url = alert_url_for(error, self.alert_policy)
        if token is not None:
            await acall_hook("on_discount", self.on_discount, token, error)
        if url is not None:
            await acall_hook("on_alert", self.on_alert, url, error)
        await acall_hook("on_error", self.on_error, error)

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
