"""The pure core of the middleware: an exception + request headers → the error answer.

Two steps, so that the one step with I/O (obtaining a voucher) sits between them and
the ASGI and WSGI adapters can do it their own way (await or call):

1. `Responder.plan`: which `ProviderError` answers (the raised one, the provider's
   mapping of its exception, or ``INTERNAL_ERROR`` for anything unhandled), in which
   language and format, and what the `CompensationPolicy` grants this user (a
   `VoucherRequest`, or None).
2. `Responder.render`: status, headers and body bytes — the seed payload (``error_code``,
   ``message``, ``suggestion``, ``category``, ``discount_token``, ``alert_url``) as
   ``application/json``, or RFC 9457 ``application/problem+json`` (``type``, ``title``,
   ``status``, ``detail`` and the same members as extensions) when the client's Accept
   prefers it.

Policy: an unhandled exception never reaches the client (no traceback, no exception
text, no type name) and is logged with its traceback; it is not compensated unless
``compensate_unhandled`` is set, because a request that triggers a bug at will would
otherwise mint vouchers at will (the server's detector compensates persistent failures).
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Mapping
from typing import Any

import attrs

from .._model.enums import ErrorCategory, Severity
from .._model.errors import ConfigurationError, PolicyError
from .._model.wire import (
    ALERT_URL,
    CATEGORY,
    DISCOUNT_TOKEN,
    ERROR_CODE,
    INTERNAL_ERROR,
    MESSAGE,
    PROBLEM_JSON,
    SUGGESTION,
)
from .errors import ErrorMap, ProviderError
from .negotiate import choose_language, prefers_problem_json
from .policy import CompensationPolicy
from .vouchers import Voucher, VoucherRequest

__all__ = ["INTERNAL", "ErrorAnswer", "ErrorPlan", "Responder"]

_log = logging.getLogger("errdiscount_sdk.provider")

DEFAULT_LANGUAGE = "en"
INTERNAL = ProviderError(
    INTERNAL_ERROR,
    "The service failed to handle the request.",
    suggestion="Please try again later. If it keeps failing, contact support.",
    status=500,
    category=ErrorCategory.PROTOCOL,
    severity=Severity.SEVERE,
    messages={"en": "The service failed to handle the request.", "zh-CN": "服务处理请求时出错。"},
    suggestions={
        "en": "Please try again later. If it keeps failing, contact support.",
        "zh-CN": "请稍后重试；如果一直失败，请联系客服。",  # noqa: RUF001 (Chinese punctuation)
    },
)
"""The answer to an unhandled exception: fixed text, nothing of the exception."""


@attrs.frozen
class ErrorPlan:
    """What to answer, decided from the exception, the headers and the policy."""

    error: ProviderError
    unhandled: bool
    language: str
    problem: bool
    message: str
    suggestion: str | None
    voucher_request: VoucherRequest | None


@attrs.frozen
class ErrorAnswer:
    """The HTTP answer, plus the members the call event records."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = attrs.field(repr=False)
    error_code: str
    category: str
    severity: str
    transient: bool


def _localised(texts: Mapping[str, str], fallback: str | None, language: str) -> str | None:
    # The default-language argument (message=, suggestion=) stands in for a missing text.
    return texts.get(language) or fallback


class Responder:
    """Builds error answers. Immutable; one per middleware.

    Args:
        errors: the provider's exception mappings (an `ErrorMap` or a mapping for one).
        policy: the `CompensationPolicy`; None compensates nothing.
        compensate: whether vouchers can be obtained at all (a voucher source is set).
        default_language: the language of ``ProviderError.message`` and the fallback.
        problem_type_base: when set, problem ``type`` is this + the error code (e.g.
            ``https://api.example.com/problems/``); else ``about:blank``.
        compensate_unhandled: let the policy compensate ``INTERNAL_ERROR`` too.

    Raises:
        ConfigurationError: bad arguments.
    """

    def __init__(
        self,
        *,
        errors: ErrorMap | Mapping[type[BaseException], Any] | None = None,
        policy: CompensationPolicy | None = None,
        compensate: bool = False,
        default_language: str = DEFAULT_LANGUAGE,
        problem_type_base: str | None = None,
        compensate_unhandled: bool = False,
    ) -> None:
        self.errors = errors if isinstance(errors, ErrorMap) else ErrorMap(errors)
        given: tuple[object, object, object] = (policy, default_language, problem_type_base)
        if given[0] is not None and not isinstance(given[0], CompensationPolicy):
            raise ConfigurationError("policy must be a CompensationPolicy or None")
        if not isinstance(given[1], str) or not given[1]:
            raise ConfigurationError("default_language must be a language tag such as 'en'")
        if given[2] is not None and not (
            isinstance(given[2], str) and given[2].startswith("https://")
        ):
            raise ConfigurationError("problem_type_base must be an https:// URL prefix or None")
        self.policy = policy
        self.compensate = compensate
        self.default_language = default_language
        self.problem_type_base = problem_type_base
        self.compensate_unhandled = compensate_unhandled

    def resolve(self, exc: BaseException) -> tuple[ProviderError, bool]:
        """The `ProviderError` answering ``exc`` and whether ``exc`` was unhandled (logged)."""
        error = self.errors.resolve(exc)
        if error is not None:
            return error, False
        _log.error("unhandled exception answered as %s", INTERNAL_ERROR, exc_info=exc)
        return INTERNAL, True

    def plan(
        self,
        exc: BaseException,
        *,
        accept: str | None,
        accept_language: str | None,
        user_id: str | None,
        segment: str | None = None,
    ) -> ErrorPlan:
        error, unhandled = self.resolve(exc)
        languages = [self.default_language, *error.messages]
        language = choose_language(accept_language, languages, self.default_language)
        message = _localised(error.messages, error.message, language)
        suggestion = _localised(error.suggestions, error.suggestion, language)
        return ErrorPlan(
            error=error,
            unhandled=unhandled,
            language=language,
            problem=prefers_problem_json(accept),
            message=message or error.message,
            suggestion=suggestion,
            voucher_request=self._voucher_request(error, unhandled, user_id, segment),
        )

    def _voucher_request(
        self, error: ProviderError, unhandled: bool, user_id: str | None, segment: str | None
    ) -> VoucherRequest | None:
        policy = self.policy
        if not self.compensate or policy is None or not user_id or error.compensable is False:
            return None
        if unhandled and not self.compensate_unhandled:
            return None
        try:
            decision = policy.decide(
                error.error_code,
                category=error.category,
                severity=error.severity,
                transient=error.transient,
                segment=segment,
            )
        except PolicyError as exc:  # an unknown segment from the app's callable
            _log.warning("no compensation for %s: %s", error.error_code, exc)
            return None
        compensation, ttl = decision.compensation, decision.ttl
        if compensation is None:
            if error.compensable is not True:
                return None
            compensation = policy.tiers[decision.severity][0]
        messages = {self.default_language: error.message, **error.messages}
        suggestions = dict(error.suggestions)
        if error.suggestion is not None:
            suggestions.setdefault(self.default_language, error.suggestion)
        return VoucherRequest(
            subject=user_id,
            error_code=error.error_code,
            category=error.category.value,
            severity=decision.severity.value,
            transient=error.transient,
            compensation=compensation,
            ttl=ttl,
            segment=segment,
            messages=messages,
            suggestions=suggestions,
        )

    def render(self, plan: ErrorPlan, voucher: Voucher | None = None) -> ErrorAnswer:
        error = plan.error
        members: dict[str, Any] = {
            ERROR_CODE: error.error_code,
            MESSAGE: plan.message,
            SUGGESTION: plan.suggestion,
            CATEGORY: error.category.value,
            DISCOUNT_TOKEN: voucher.token if voucher is not None else None,
            ALERT_URL: voucher.alert_url if voucher is not None else None,
        }
        if plan.problem:
            body: dict[str, Any] = {
                "type": (self.problem_type_base + error.error_code)
                if self.problem_type_base
                else "about:blank",
                "title": _phrase(error.status),
                "status": error.status,
                "detail": plan.message,
                **members,
            }
            media = PROBLEM_JSON
        else:
            body, media = members, "application/json"
        return ErrorAnswer(
            status=error.status,
            headers=(
                ("content-type", media),
                ("content-language", plan.language),
                ("vary", "Accept, Accept-Language"),
                # The body may carry a voucher for this user: no shared cache may keep it.
                ("cache-control", "no-store"),
            ),
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            error_code=error.error_code,
            category=error.category.value,
            severity=error.severity.value,
            transient=error.transient,
        )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
