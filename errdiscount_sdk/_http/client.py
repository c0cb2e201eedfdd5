"""`Client`: a drop-in for ``httpx.Client`` that raises typed errors and retries safely.

One call = one `httpx.Request`, built once (with its ``Idempotency-Key`` for
POST/PATCH), sent by the retry loop (`run_sync`) through the transport glue
until it succeeds or the policy gives up. A failure raises the `ApiError`
subclass `classify` picked, enriched (verified discount, policy-checked alert
URL), after the hooks ran: ``on_discount``, ``on_alert``, then ``on_error``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import attrs
import httpx

from .._model.alert_url import AlertUrlPolicy
from .._model.errors import ApiError, ConfigurationError
from .._report.calls import report_call
from .._report.reporter import ErrorReporter
from . import transport as _transport
from .budget import RetryBudget
from .enrich import SupportsVerify, alert_url_for, discount_for
from .hooks import Hook, call_hook, logger
from .retry import RetryPolicy, run_sync
from .transport import DEFAULT_MAX_JSON_BYTES, DEFAULT_TIMEOUT, TimeoutTypes, Validator

__all__ = ["DEFAULT_RETRY", "Client", "ClientBase", "shown_url"]

DEFAULT_RETRY = RetryPolicy()
"""Marker for "a fresh default policy": each client gets its own budget."""


class ClientBase:
    """What `Client` and `AsyncClient` share: settings, request building, hook wiring."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None,
        alert_policy: AlertUrlPolicy | None,
        verifier: SupportsVerify | None,
        on_retry: Hook | None,
        on_error: Hook | None,
        on_discount: Hook | None,
        on_alert: Hook | None,
        idempotency_keys: bool,
        expect_json: bool,
        max_json_bytes: int,
        reporter: ErrorReporter | None = None,
    ) -> None:
        if retry is DEFAULT_RETRY:
            retry = attrs.evolve(DEFAULT_RETRY, budget=RetryBudget())
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a RetryPolicy or None")
        if alert_policy is not None and not isinstance(alert_policy, AlertUrlPolicy):
            raise ConfigurationError("alert_policy must be an AlertUrlPolicy or None")
        if verifier is not None and not callable(getattr(verifier, "verify", None)):
            raise ConfigurationError("verifier must have a verify(token) method")
        for name, hook in (
            ("on_retry", on_retry),
            ("on_error", on_error),
            ("on_discount", on_discount),
            ("on_alert", on_alert),
        ):
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"{name} must be callable")
        if max_json_bytes < 1:
            raise ConfigurationError("max_json_bytes must be >= 1")
        if reporter is not None and not isinstance(reporter, ErrorReporter):
            raise ConfigurationError("reporter must be an ErrorReporter or None")
        self.reporter = reporter
        self.retry = retry
        self.alert_policy = alert_policy
        self.verifier = verifier
        self.on_retry = on_retry
        self.on_error = on_error
        self.on_discount = on_discount
        self.on_alert = on_alert
        self.idempotency_keys = idempotency_keys
        self.expect_json = expect_json
        self.max_json_bytes = max_json_bytes

    @staticmethod
    def _check_client_args(
        http_client: object, transport: object, *, base_url: object, headers: object
    ) -> None:
        if http_client is None:
            return
        if transport is not None:
            raise ConfigurationError("pass transport= or http_client=, not both")
        if base_url or headers is not None:
            raise ConfigurationError(
                "with http_client=, configure base_url and headers on that client"
            )

    def _build(
        self,
        http_client: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str | httpx.URL,
        idempotency_key: str | None,
        kwargs: dict[str, Any],
    ) -> httpx.Request:
        return _transport.build_request(
            http_client,
            method,
            url,
            add_idempotency_key=self.idempotency_keys,
            idempotency_key=idempotency_key,
            **kwargs,
        )

    def _report(
        self,
        request: httpx.Request,
        *,
        endpoint: str | None,
        started: float,
        attempts: int,
        status: int | None = None,
        error: ApiError | None = None,
    ) -> None:
        """Hand the call's final outcome to the reporter, if there is one."""
        if self.reporter is not None:
            report_call(
                self.reporter,
                request,
                endpoint=endpoint,
                started=started,
                attempts=attempts,
                status=status,
                error=error,
            )

    def _refine_error(self, error: ApiError) -> ApiError:
        """Turn one attempt's `ApiError` into a more specific one (default: unchanged).

        Runs inside the retry loop, before the policy looks at the error, so a
        subclass that knows a server's error codes (`RedemptionClient`'s) decides
        what is transient and which class is raised.
        """
        return error

    def finish_sync(self, error: ApiError) -> None:
        """Enrich a final error and run the hooks: on_discount, on_alert, on_error."""
        self._log_failure(error)
        token = discount_for(error, self.verifier)
        url = alert_url_for(error, self.alert_policy)
        if token is not None:
            call_hook("on_discount", self.on_discount, token, error)
        if url is not None:
            call_hook("on_alert", self.on_alert, url, error)
        call_hook("on_error", self.on_error, error)

    @staticmethod
    def _log_failure(error: ApiError) -> None:
        logger.debug(
            "call failed: %s (status %s) after %d attempt(s)",
            error.error_type,
            error.status_code,
            error.attempts,
        )


class Client(ClientBase):
    """A synchronous HTTP client with typed errors, safe retries and compensation hooks.

    Args:
        base_url: prefix for relative URLs.
        timeout: seconds (or an `httpx.Timeout`) per attempt; None: no timeout.
        headers: headers sent with every request.
        retry: the `RetryPolicy`; the default is a fresh ``RetryPolicy()`` (3
            attempts, own budget); None disables retries.
        alert_policy: the `AlertUrlPolicy` alert URLs must pass to reach
            ``on_alert``; without one, every alert URL is refused.
        verifier: a `TokenVerifier` (anything with ``verify(token)``); when
            given, discount tokens are verified before being handed out.
        on_retry: ``on_retry(RetryDetails)`` before each retry's wait.
        on_error: ``on_error(ApiError)`` once per failed call, before raising.
        on_discount: ``on_discount(token, ApiError)``: the verified token, or
            the raw token string when no verifier is configured.
        on_alert: ``on_alert(url, ApiError)`` with policy-allowed URLs only.
        transport: an httpx transport (tests, custom stacks).
        http_client: an ``httpx.Client`` you configured; not closed by `close`.
        idempotency_keys: add a fresh ``Idempotency-Key`` to every POST/PATCH.
        expect_json: by default, decode success bodies as JSON and raise
            `InvalidResponseBody` when they are not (also per call).
        max_json_bytes: the largest success body ``expect_json`` decodes.
        reporter: an `ErrorReporter` recording each call's final outcome
            (after retries); give the route template per call with ``endpoint=``.

    Raises:
        ConfigurationError: inconsistent or invalid arguments.

    Hooks run synchronously in the calling thread; one that raises is logged
    on the ``errdiscount_sdk`` logger and never breaks the call.
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
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
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
            if not isinstance(http_client, httpx.Client):
                raise ConfigurationError("http_client must be an httpx.Client")
            self._http, self._owns_http = http_client, False
        else:
            self._http = _transport.make_sync_client(
                base_url=base_url, timeout=timeout, headers=headers, transport=transport
            )
            self._owns_http = True

    def request(
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

        Args:
            method: the HTTP method.
            url: absolute, or relative to ``base_url``.
            idempotency_key: use this key instead of a generated one.
            expect_json: decode the success body as JSON (default: the client's).
            validator: called with the decoded body; raising or returning
                False makes the call fail with `InvalidResponseBody`.
            endpoint: the route template the reporter records
                (``"/api/pay/{id}"``); default: guessed from the path.
            **kwargs: what ``httpx.Client.build_request`` takes (``params``,
                ``headers``, ``json``, ``content``, ``data``, ``files``,
                ``cookies``, ``timeout``, ``extensions``).

        Raises:
            ApiError: the classified failure of the last attempt, with ``.attempts``.
            ConfigurationError: an invalid URL or argument.
        """
        request = self._build(self._http, method, url, idempotency_key, kwargs)
        want_json = self.expect_json if expect_json is None else expect_json
        http, max_json = self._http, self.max_json_bytes
        started, attempts = time.perf_counter(), 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            try:
                return _transport.send(
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
            response = run_sync(self.retry, attempt, on_retry=self.on_retry)
        except ApiError as error:
            self.finish_sync(error)
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

    def get(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("HEAD", url, ...)``."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("OPTIONS", url, ...)``."""
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("POST", url, ...)``; gets an ``Idempotency-Key`` unless disabled."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PUT", url, ...)``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PATCH", url, ...)``; gets an ``Idempotency-Key`` unless disabled."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("DELETE", url, ...)``."""
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={shown_url(self._http.base_url)!r})"


def shown_url(url: httpx.URL) -> str:
    # Userinfo and query strings may hold credentials: show the origin and path only.
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))
