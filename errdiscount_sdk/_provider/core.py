"""What the ASGI, WSGI and Django middlewares share: options, checked once, and helpers.

Every middleware takes the same keyword arguments (documented on `MiddlewareCore.build`)
and differs only in the request object its callables receive: the ASGI ``scope``, the
WSGI ``environ``, or Django's ``HttpRequest``.

Policy: the app's callables (``user_id``, ``segment``, ``platform``, ...) and the sink
run inside a request; whatever they raise is logged at DEBUG and counts as None — a
bug in the observer must not become an outage of the observed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs
import httpx

from .._model.classify import classify
from .._model.errors import ConfigurationError, InvalidEvent
from .._report.redaction import Redactor
from .._tokens.issuer import TokenIssuer
from .errors import ErrorMap, ExceptionMapper
from .events import (
    DEFAULT_REDACTOR,
    EventSink,
    ParamsRedaction,
    call_event,
    query_params,
    record_safely,
)
from .policy import CompensationPolicy
from .responder import DEFAULT_LANGUAGE, ErrorAnswer, Responder
from .vouchers import LocalVouchers, ServerVouchers, VoucherSource

__all__ = ["MAX_ID_CHARS", "MiddlewareCore", "RequestClock"]

_log = logging.getLogger("errdiscount_sdk.provider")

R = TypeVar("R")
MAX_ID_CHARS = 256
"""A user id (or platform, version, segment) longer than this is cut."""

Getter = Callable[[R], object]


def _check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise ConfigurationError(f"{name} must be callable (taking the request) or None")


def _redaction(redact: Redactor | ParamsRedaction | None) -> ParamsRedaction:
    if redact is None:
        return DEFAULT_REDACTOR.params
    if isinstance(redact, Redactor):
        return redact.params
    return redact


@attrs.frozen
class RequestClock:
    """When a request started, for the event's ``ts`` and ``duration_ms``."""

    wall: dt.datetime
    mono: float

    @classmethod
    def start(cls) -> RequestClock:
        return cls(dt.datetime.now(dt.UTC), time.perf_counter())

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.mono) * 1000.0


@attrs.frozen
class MiddlewareCore(Generic[R]):
    """The checked options of one middleware instance (see `build` for each one)."""

    responder: Responder
    vouchers: VoucherSource | None
    reporter: EventSink | None
    user_id: Getter[R] | None
    segment: Getter[R] | None
    platform: Getter[R] | None
    os_version: Getter[R] | None
    app_version: Getter[R] | None
    redact: ParamsRedaction

    @classmethod
    def build(
        cls,
        *,
        reporter: EventSink | None = None,
        user_id: Getter[R] | None = None,
        errors: Mapping[type[BaseException], ExceptionMapper] | ErrorMap | None = None,
        policy: CompensationPolicy | None = None,
        issuer: TokenIssuer | None = None,
        redemption_server: str | None = None,
        admin_key: str | None = None,
        voucher_timeout: float = 2.0,
        segment: Getter[R] | None = None,
        platform: Getter[R] | None = None,
        os_version: Getter[R] | None = None,
        app_version: Getter[R] | None = None,
        redact: Redactor | ParamsRedaction | None = None,
        default_language: str = DEFAULT_LANGUAGE,
        problem_type_base: str | None = None,
        compensate_unhandled: bool = False,
    ) -> MiddlewareCore[R]:
        """Check the options and build the core.

        Args:
            reporter: the `ErrorReporter` (or any `EventSink`: ``record(mapping)``)
                that records one event per request; None records nothing.
            user_id: ``user_id(request) -> str | None``: the user the request is for
                (the voucher's subject and the event's ``user_id``).
            errors: exception class → `ProviderError` (or a function of the exception
                returning one); looked up along the exception's MRO.
            policy: the `CompensationPolicy` (default: `CompensationPolicy.default()`
                when a voucher source is configured).
            issuer: a `TokenIssuer` to sign vouchers in-process (no ``alert_url``).
            redemption_server: the errdiscount server URL; with ``admin_key``, the server
                issues and records each voucher and the answer carries its ``alert_url``.
            admin_key: the server's admin key (never logged).
            voucher_timeout: seconds to wait for the server's voucher (then none is sent).
            segment: ``segment(request) -> "high_value" | "regular" | "new" | None``.
            platform, os_version, app_version: ``f(request) -> str | None`` for the event.
            redact: the `Redactor` of the query parameters before they are recorded
                (default: ``Redactor()``, the reporter's rules: sensitive keys become
                ``[Filtered]``, other values type and length), or a function
                ``params -> mapping``.
            default_language: the language of ``ProviderError.message``.
            problem_type_base: the problem+json ``type`` prefix (else ``about:blank``).
            compensate_unhandled: let the policy compensate ``INTERNAL_ERROR`` answers.

        Raises:
            ConfigurationError: bad or conflicting options.
        """
        for name, value in (
            ("user_id", user_id),
            ("segment", segment),
            ("platform", platform),
            ("os_version", os_version),
            ("app_version", app_version),
            ("redact", None if isinstance(redact, Redactor) else redact),
        ):
            _check_callable(name, value)
        if reporter is not None and not callable(getattr(reporter, "record", None)):
            raise ConfigurationError("reporter must have a record(event) method")
        if issuer is not None and not isinstance(issuer, TokenIssuer):
            raise ConfigurationError("issuer must be a TokenIssuer or None")
        if (redemption_server is None) != (admin_key is None):
            raise ConfigurationError("redemption_server and admin_key go together")
        if issuer is not None and redemption_server is not None:
            raise ConfigurationError(
                "give either issuer= (sign locally) or redemption_server= (the server issues)"
            )
        vouchers: VoucherSource | None = None
        if issuer is not None:
            vouchers = LocalVouchers(issuer)
        elif redemption_server is not None and admin_key is not None:
            from .._redeem.issuing import AsyncTokenIssuingClient, TokenIssuingClient

            timeout: object = voucher_timeout
            if not isinstance(timeout, int | float) or not 0 < timeout <= 30:
                raise ConfigurationError("voucher_timeout must be a number of seconds in (0, 30]")
            vouchers = ServerVouchers(
                TokenIssuingClient(redemption_server, admin_key=admin_key, timeout=voucher_timeout),
                AsyncTokenIssuingClient(
                    redemption_server, admin_key=admin_key, timeout=voucher_timeout
                ),
            )
        if vouchers is not None and policy is None:
            policy = CompensationPolicy.default()
        responder = Responder(
            errors=errors,
            policy=policy,
            compensate=vouchers is not None,
            default_language=default_language,
            problem_type_base=problem_type_base,
            compensate_unhandled=compensate_unhandled,
        )
        return cls(
            responder=responder,
            vouchers=vouchers,
            reporter=reporter,
            user_id=user_id,
            segment=segment,
            platform=platform,
            os_version=os_version,
            app_version=app_version,
            redact=_redaction(redact),
        )

    @staticmethod
    def ask(getter: Getter[R] | None, request: R) -> str | None:
        """``getter(request)`` as a capped string, or None (and None when it raises)."""
        if getter is None:
            return None
        try:
            value = getter(request)
        except Exception:
            _log.debug("a middleware callable raised; using None", exc_info=True)
            return None
        if value is None:
            return None
        return str(value)[:MAX_ID_CHARS]

    def event(
        self,
        request: R,
        *,
        clock: RequestClock,
        method: str,
        endpoint_path: str,
        status: int | None,
        query: str | bytes,
        user_id: str | None,
        answer: ErrorAnswer | None = None,
    ) -> None:
        """Build the call event and hand it to the reporter (never raises)."""
        if self.reporter is None:
            return
        try:
            params: Mapping[str, Any] = self.redact(query_params(query))
        except Exception:
            _log.debug("redacting the query parameters raised; recording none", exc_info=True)
            params = {}
        error_code = category = severity = None
        transient = False
        if answer is not None:
            error_code, category, severity = answer.error_code, answer.category, answer.severity
            transient = answer.transient
        elif status is not None and status >= 400:
            # An error answered by the app or framework itself (a 404 of the router, a 422
            # of validation): graded by the rules clients apply to a bare status.
            rules = classify(httpx.Response(status))
            category, severity = rules.category.value, rules.severity.value
            transient = rules.transient
        try:
            event: dict[str, Any] = call_event(
                started=clock.wall,
                duration_ms=clock.elapsed_ms(),
                method=method,
                endpoint_path=endpoint_path,
                status=status,
                user_id=user_id,
                params=params,
                error_code=error_code,
                category=category,
                severity=severity,
                transient=transient,
                platform=self.ask(self.platform, request),
                os_version=self.ask(self.os_version, request),
                app_version=self.ask(self.app_version, request),
                segment=self.ask(self.segment, request),
            )
        except InvalidEvent as exc:  # e.g. a control character in the user id
            _log.debug("request not recorded: invalid event (%s)", exc.reason)
            return
        record_safely(self.reporter, event)
