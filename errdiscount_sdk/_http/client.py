"""`Client`: a drop-in for ``httpx.Client`` that raises typed errors and retries safely.

One call = one `httpx.Request`, built once (with its ``Idempotency-Key`` when
the call may be resent), sent attempt by attempt (``for attempt in
RetryLoop(...)``) through the transport glue until it succeeds or the policy
gives up. A failure raises the `ApiError` subclass `classify` picked, rebuilt
once with what the end of the call knows (attempts, why retries stopped, the
verified discount, the policy-checked alert URL), after the hooks ran:
``on_discount``, ``on_alert``, then ``on_error``.

Resending policy (docs/retry.md): a request that provably never reached the
server (DNS, refused, connect timeout) may always be resent; after it may have
reached the server, only an idempotent method (GET, HEAD, OPTIONS, PUT, DELETE,
TRACE) or a call that opted in (``retry_non_idempotent=True`` on the client,
or an explicit ``idempotency_key=`` / ``Idempotency-Key`` header on the call),
and never a one-shot body (a generator or stream).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from .._model.alert_url import AlertUrlPolicy
from .._model.checks import require_real
from .._model.classify import is_safe_to_retry
from .._model.errors import ApiError, ConfigurationError
from .._report.calls import report_call
from .._report.reporter import ErrorReporter
from . import transport as _transport
from .budget import RetryBudget
from .enrich import Findings, SupportsVerify, findings_for
from .hooks import AlertHook, DiscountHook, ErrorHook, RetryHook, call_hook, logger
from .retry import RetryLoop, RetryPolicy
from .sentinel import USE_CLIENT_DEFAULT, UseClientDefault
from .transport import DEFAULT_MAX_JSON_BYTES, DEFAULT_TIMEOUT, Call, TimeoutTypes, Validator

__all__ = ["AuthArg", "Client", "ClientBase", "RedirectsArg", "RetryArg", "shown_url"]

RetryArg = RetryPolicy | None | UseClientDefault
"""What ``retry=`` takes: a policy, None (no retries), or the default (a fresh policy)."""
AuthArg = httpx.Auth | tuple[str | bytes, str | bytes] | None | UseClientDefault | Any
"""What a call's ``auth=`` takes: what httpx takes, or the client's (the default)."""
RedirectsArg = bool | UseClientDefault | Any
"""What a call's ``follow_redirects=`` takes: a bool, or the client's (the default)."""


class ClientBase:
    """What `Client`, `AsyncClient` and the requests `Session` share: settings, request
    building, the retry loop of a call, and how a final error is built and handed out."""

    def __init__(
        self,
        *,
        retry: RetryArg,
        alert_policy: AlertUrlPolicy | None,
        verifier: SupportsVerify | None,
        on_retry: RetryHook | None,
        on_error: ErrorHook | None,
        on_discount: DiscountHook | None,
        on_alert: AlertHook | None,
        idempotency_keys: bool,
        expect_json: bool,
        max_json_bytes: int,
        retry_non_idempotent: bool = False,
        attempt_timeout: float | None = None,
        reporter: ErrorReporter | None = None,
    ) -> None:
        if isinstance(retry, UseClientDefault):
            retry = RetryPolicy(budget=RetryBudget())
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
        for name, flag in (
            ("idempotency_keys", idempotency_keys),
            ("expect_json", expect_json),
            ("retry_non_idempotent", retry_non_idempotent),
        ):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be a bool, got {flag!r}")
        if isinstance(max_json_bytes, bool) or not isinstance(max_json_bytes, int):
            raise ConfigurationError(f"max_json_bytes must be an int, got {max_json_bytes!r}")
        if max_json_bytes < 1:
            raise ConfigurationError("max_json_bytes must be >= 1")
        if attempt_timeout is not None:
            require_real(attempt_timeout, "attempt_timeout", minimum=0, exclusive_minimum=True)
        if reporter is not None and not isinstance(reporter, ErrorReporter):
            raise ConfigurationError("reporter must be an ErrorReporter or None")
        self.reporter = reporter
        self.retry: RetryPolicy | None = retry
        self.alert_policy = alert_policy
        self.verifier = verifier
        self.on_retry = on_retry
        self.on_error = on_error
        self.on_discount = on_discount
        self.on_alert = on_alert
        self.idempotency_keys = idempotency_keys
        self.expect_json = expect_json
        self.max_json_bytes = max_json_bytes
        self.retry_non_idempotent = retry_non_idempotent
        self.attempt_timeout = attempt_timeout

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

    def _prepare(
        self,
        http_client: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str | httpx.URL,
        *,
        idempotency_key: str | None,
        expect_json: bool | None,
        validator: Validator | None,
        auth: AuthArg,
        follow_redirects: RedirectsArg,
        stream: bool,
        kwargs: dict[str, Any],
    ) -> Call:
        return _transport.prepare(
            http_client,
            method,
            url,
            # A key only makes a resend safe; without the opt-in nothing is resent.
            add_idempotency_key=self.idempotency_keys and self.retry_non_idempotent,
            idempotency_key=idempotency_key,
            auth=auth,
            follow_redirects=follow_redirects,
            stream=stream,
            expect_json=self.expect_json if expect_json is None else expect_json,
            validator=validator,
            max_json_bytes=self.max_json_bytes,
            refine=self._refine_error,
            kwargs=kwargs,
        )

    def _loop(self, request: httpx.Request, *, replayable: bool = True) -> RetryLoop:
        """The retry loop of one call sending ``request``."""
        return RetryLoop(
            self.retry,
            on_retry=self.on_retry,
            resend_after_sent=self.retry_non_idempotent
            or is_safe_to_retry(request, request_sent=True),
            replayable=replayable,
            attempt_timeout=self.attempt_timeout,
        )

    def _refine_error(self, error: ApiError) -> ApiError:
        """Turn one attempt's `ApiError` into a more specific one (default: unchanged).

        Runs inside the retry loop, before the policy looks at the error, so a
        subclass that knows a server's error codes (`RedemptionClient`'s) decides
        what is transient and which class is raised.
        """
        return error

    def _final(self, loop: RetryLoop, error: ApiError, findings: Findings) -> ApiError:
        final = loop.conclude(error, **findings.error_fields())
        logger.debug(
            "call failed: %s (status %s) after %d attempt(s), retries stopped by %s",
            final.error_type,
            final.status_code,
            final.attempts,
            final.retry_stopped_by,
        )
        return final

    def report(
        self,
        request: httpx.Request,
        *,
        endpoint: str | None,
        started: float,
        attempts: int,
        status: int | None = None,
        error: ApiError | None = None,
    ) -> None:
        """Hand the call's final outcome (after retries) to the reporter, if there is one."""
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

    def fail_sync(self, loop: RetryLoop, error: ApiError) -> ApiError:
        """The final error of a call: concluded, enriched, hooks run (on_discount,
        on_alert, on_error). The caller raises it."""
        findings = findings_for(error.payload, self.verifier, self.alert_policy, error.error_type)
        final = self._final(loop, error, findings)
        if findings.offered_discount is not None:
            call_hook("on_discount", self.on_discount, findings.offered_discount, final)
        if findings.alert_url is not None:
            call_hook("on_alert", self.on_alert, findings.alert_url, final)
        call_hook("on_error", self.on_error, final)
        return final


class Client(ClientBase):
    """A synchronous HTTP client with typed errors, safe retries and compensation hooks.

    Args:
        base_url: prefix for relative URLs.
        timeout: seconds (or an `httpx.Timeout`) for each stage of an attempt
            (connect, write, each read, pool), as httpx; None: no timeout.
            The whole call is bounded by the policy's ``deadline``, and each
            attempt by ``attempt_timeout`` when given.
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
        idempotency_keys: with ``retry_non_idempotent``, add a fresh
            ``Idempotency-Key`` to every POST/PATCH so its resends are safe at
            a server that honours the key.
        expect_json: by default, decode success bodies as JSON and raise
            `InvalidResponseBody` when they are not (also per call).
        max_json_bytes: the largest success body ``expect_json`` decodes.
        retry_non_idempotent: resend POST/PATCH after they may have reached the
            server (default False: only when they provably did not). A call
            opts in alone by passing ``idempotency_key=``.
        attempt_timeout: seconds each attempt may take in all (connect, send
            and reading the body), or None (the default: the policy's deadline
            bounds the call).
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
        retry: RetryArg = USE_CLIENT_DEFAULT,
        alert_policy: AlertUrlPolicy | None = None,
        verifier: SupportsVerify | None = None,
        on_retry: RetryHook | None = None,
        on_error: ErrorHook | None = None,
        on_discount: DiscountHook | None = None,
        on_alert: AlertHook | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
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
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: RedirectsArg = USE_CLIENT_DEFAULT,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; return the successful response or raise its `ApiError`.

        Args:
            method: the HTTP method.
            url: absolute, or relative to ``base_url``.
            idempotency_key: send this ``Idempotency-Key`` on every attempt; it
                also opts this call in to resends after the request may have
                reached the server.
            expect_json: decode the success body as JSON (default: the client's).
            validator: called with the decoded body; raising or returning
                False makes the call fail with `InvalidResponseBody`.
            auth: httpx authentication for this call (default: the client's).
            follow_redirects: follow redirects on this call (default: the client's).
            endpoint: the route template the reporter records
                (``"/api/pay/{id}"``); default: guessed from the path.
            **kwargs: what ``httpx.Client.build_request`` takes (``params``,
                ``headers``, ``json``, ``content``, ``data``, ``files``,
                ``cookies``, ``timeout``, ``extensions``).

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
        return self._run(call, endpoint)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        idempotency_key: str | None = None,
        auth: AuthArg = USE_CLIENT_DEFAULT,
        follow_redirects: RedirectsArg = USE_CLIENT_DEFAULT,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """``with client.stream("GET", url) as response:`` — as ``httpx.Client.stream``.

        The status is classified (and retried) as for `request`: a failing one
        raises its `ApiError` before the block runs. The success body is the
        caller's to read (``iter_bytes``, ``iter_lines``, ``read``); the retry
        deadline does not cover it, and a transport failure while reading is
        raised as an `ApiError` (the hooks are not called for it). The response
        is closed when the block ends.
        """
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
        response = self._run(call, endpoint)
        try:
            yield response
        finally:
            response.close()

    def _run(self, call: Call, endpoint: str | None) -> httpx.Response:
        loop = self._loop(call.request, replayable=call.replayable)
        started = time.perf_counter()
        try:
            for attempt in loop:
                response: httpx.Response | None = None
                with attempt:
                    response = _transport.send(self._http, call, attempt.deadline)
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
            final = self.fail_sync(loop, error)
            self.report(
                call.request,
                endpoint=endpoint,
                started=started,
                attempts=loop.attempts,
                error=final,
            )
            raise final from error.__cause__
        raise AssertionError("unreachable: the retry loop ended without an outcome")

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
        """``request("POST", url, ...)``; resent only as the class docstring says."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PUT", url, ...)``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """``request("PATCH", url, ...)``; resent only as the class docstring says."""
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
