"""The provider middleware for Django: ``process_exception`` sees what WSGI never does.

Django turns a view's exception into its own 500 page inside its handler, before any
WSGI middleware sees it; the route template (``request.resolver_match.route``) also
exists only inside. So Django gets a Django middleware: list it in ``MIDDLEWARE``.

- `ErrDiscountDjangoMiddleware` reads its options from ``settings.ERRDISCOUNT`` (a dict
  of the `MiddlewareCore.build` keyword arguments);
- `django_middleware(**options)` returns a subclass with the options built in, for
  projects that configure in code (``PaymentsErrDiscount = django_middleware(...)``
  in a module, and its dotted path in ``MIDDLEWARE``).

Django's own HTTP exceptions (``Http404``, ``PermissionDenied``, ``BadRequest``,
``SuspiciousOperation``) keep Django's answers unless ``errors`` maps them. The
callables (``user_id``, ...) receive the ``HttpRequest`` (``request.user`` works when
the middleware is listed after ``AuthenticationMiddleware``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .._model.errors import ConfigurationError
from .core import MiddlewareCore, RequestClock
from .events import normalise_path, template_of
from .responder import ErrorAnswer

__all__ = ["ErrDiscountDjangoMiddleware", "django_middleware"]

_ANSWER_ATTR = "_errdiscount_answer"
_USER_ATTR = "_errdiscount_user_id"
_DJANGO_OWN = (
    ("django.http", "Http404"),
    ("django.core.exceptions", "PermissionDenied"),
    ("django.core.exceptions", "BadRequest"),
    ("django.core.exceptions", "SuspiciousOperation"),
)


def _django_own_exceptions() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module, name in _DJANGO_OWN:
        kind = getattr(importlib.import_module(module), name, None)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            found.append(kind)
    return tuple(found)


def route_of(request: Any) -> str:
    """``request.resolver_match.route`` as a template, else the normalised path."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if isinstance(route, str) and route:
        return template_of(route)
    return normalise_path(str(getattr(request, "path", "/") or "/"))


class ErrDiscountDjangoMiddleware:
    """Django middleware: errors → the seed payload (or problem+json), one event per request.

    Options: built in by `django_middleware`, else ``settings.ERRDISCOUNT``; see
    `MiddlewareCore.build`.

    Raises:
        ConfigurationError: bad or conflicting options (when Django loads the middleware).
    """

    prebuilt: ClassVar[MiddlewareCore[Any] | None] = None
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        core = type(self).prebuilt
        if core is None:
            settings = importlib.import_module("django.conf").settings
            options = getattr(settings, "ERRDISCOUNT", {})
            if not isinstance(options, Mapping):
                raise ConfigurationError("settings.ERRDISCOUNT must be a dict of options")
            core = MiddlewareCore.build(**options)
        self.core: MiddlewareCore[Any] = core
        self._django_own = _django_own_exceptions()
        self._response_class = importlib.import_module("django.http").HttpResponse

    def __call__(self, request: Any) -> Any:
        clock = RequestClock.start()
        response = self.get_response(request)
        core = self.core
        if core.reporter is not None:
            answer = getattr(request, _ANSWER_ATTR, None)
            user = (
                getattr(request, _USER_ATTR)
                if hasattr(request, _USER_ATTR)
                else core.ask(core.user_id, request)
            )
            core.event(
                request,
                clock=clock,
                method=str(getattr(request, "method", "GET") or "GET"),
                endpoint_path=route_of(request),
                status=int(getattr(response, "status_code", 0)) or None,
                query=str(request.META.get("QUERY_STRING", "")),
                user_id=user,
                answer=answer if isinstance(answer, ErrorAnswer) else None,
            )
        return response

    def process_exception(self, request: Any, exception: Exception) -> Any:
        core = self.core
        if (
            isinstance(exception, self._django_own)
            and core.responder.errors.resolve(exception) is None
        ):
            return None  # Django answers its own HTTP exceptions
        user = core.ask(core.user_id, request)
        plan = core.responder.plan(
            exception,
            accept=request.META.get("HTTP_ACCEPT"),
            accept_language=request.META.get("HTTP_ACCEPT_LANGUAGE"),
            user_id=user,
            segment=core.ask(core.segment, request),
        )
        voucher = None
        if plan.voucher_request is not None and core.vouchers is not None:
            voucher = core.vouchers.issue(plan.voucher_request)
        answer = core.responder.render(plan, voucher)
        setattr(request, _ANSWER_ATTR, answer)
        setattr(request, _USER_ATTR, user)
        return self._response_class(answer.body, status=answer.status, headers=dict(answer.headers))


def django_middleware(**options: Any) -> type[ErrDiscountDjangoMiddleware]:
    """A `ErrDiscountDjangoMiddleware` subclass with ``options`` built in (checked now).

    Raises:
        ConfigurationError: bad or conflicting options.
    """
    core: MiddlewareCore[Any] = MiddlewareCore.build(**options)  # fails now, not per request
    return type(
        "ErrDiscountDjangoMiddleware",
        (ErrDiscountDjangoMiddleware,),
        {"prebuilt": core, "__module__": __name__},
    )
