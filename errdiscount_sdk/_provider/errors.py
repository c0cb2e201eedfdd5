"""`ProviderError` and exception mappings: how a provider's code states an API error.

A provider raises `ProviderError` (or registers a mapping from its own exception types
to one); the errdiscount middleware catches it and answers with the seed payload. It is
raised *by the provider's code*, never by errdiscount itself, but it derives from
`ErrDiscountError` so one ``except ErrDiscountError`` still catches everything of ours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TypeAlias

from .._model.enums import ErrorCategory, Severity
from .._model.errors import ConfigurationError, ErrDiscountError

__all__ = ["ErrorMap", "ExceptionMapper", "ProviderError"]

_log = logging.getLogger("errdiscount_sdk.provider")

MAX_TEXT_CHARS = 500
"""A message or suggestion longer than this is refused (the server's cap for provider texts)."""
MAX_LANGUAGES = 16
_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,3}")
# The statuses a client classifies as "try again" (docs/errors.md); the default of `transient`.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 502, 503, 504, 529})


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise ConfigurationError(f"{name} must be at most {MAX_TEXT_CHARS} characters")
    if any(not c.isprintable() for c in value):
        raise ConfigurationError(f"{name} must be printable text (no control characters)")
    return value


def _texts(value: object, name: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping) or len(value) > MAX_LANGUAGES:
        raise ConfigurationError(f"{name} must map at most {MAX_LANGUAGES} language tags to text")
    checked: dict[str, str] = {}
    for tag, text in value.items():
        if not isinstance(tag, str) or not _LANGUAGE.fullmatch(tag):
            raise ConfigurationError(f"{name}: {tag!r} is not a language tag (e.g. 'zh-CN')")
        checked[tag] = _text(text, f"{name}[{tag!r}]")
    return MappingProxyType(checked)


class ProviderError(ErrDiscountError):
    """An API error stated by the provider's code; the middleware turns it into the answer.

    Args:
        error_code: the stable machine code (``PAY_001``): 1-64 of ``A-Z a-z 0-9 _ . : -``.
        message: the default-language text for the user (at most 500 printable characters).
        suggestion: what the user can do about it, or None.
        status: the HTTP status, 400-599.
        category: the `ErrorCategory` the provider states (sent as ``category``).
        severity: the `Severity` the compensation policy grades.
        compensable: None lets the `CompensationPolicy` decide; False never compensates
            this error; True compensates it even when the policy's rules would not
            (with the policy's compensation for its severity).
        messages: the message per language tag, e.g. ``{"en": ..., "zh-CN": ...}``;
            chosen by the request's ``Accept-Language``; ``message`` is the fallback.
        suggestions: the suggestion per language tag, likewise.
        transient: whether the same request may succeed later; default: by status
            (408, 425, 429, 502, 503, 504, 529 are transient), as clients classify.

    Raises:
        ConfigurationError: an argument that cannot make a valid answer.
    """

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        suggestion: str | None = None,
        status: int = 400,
        category: ErrorCategory | str = ErrorCategory.BUSINESS,
        severity: Severity | str = Severity.MINOR,
        compensable: bool | None = None,
        messages: Mapping[str, str] | None = None,
        suggestions: Mapping[str, str] | None = None,
        transient: bool | None = None,
    ) -> None:
        code: object = error_code  # checked at run time, whatever the annotations say
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise ConfigurationError(
                "error_code must be 1-64 characters of A-Z a-z 0-9 _ . : - (e.g. 'PAY_001')"
            )
        number: object = status
        if isinstance(number, bool) or not isinstance(number, int) or not 400 <= number <= 599:
            raise ConfigurationError("status must be an HTTP error status (400-599)")
        try:
            category = ErrorCategory(category)
            severity = Severity(severity)
        except ValueError:
            raise ConfigurationError(
                f"category must be one of {[c.value for c in ErrorCategory]} and severity one "
                f"of {[s.value for s in Severity]}"
            ) from None
        flags: tuple[tuple[str, object], ...] = (
            ("compensable", compensable),
            ("transient", transient),
        )
        for name, flag in flags:
            if flag is not None and not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True, False or None")
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = _text(message, "message")
        self.suggestion = None if suggestion is None else _text(suggestion, "suggestion")
        self.status = status
        self.category = category
        self.severity = severity
        self.compensable = compensable
        self.messages = _texts(messages, "messages")
        self.suggestions = _texts(suggestions, "suggestions")
        self.transient = status in _TRANSIENT_STATUSES if transient is None else transient

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.error_code!r}, status={self.status}, "
            f"category={self.category.value!r}, severity={self.severity.value!r})"
        )


ExceptionMapper: TypeAlias = Callable[[BaseException], ProviderError] | ProviderError
"""What an exception type maps to: a function of the exception, or a fixed `ProviderError`."""


class ErrorMap:
    """The provider's exception → `ProviderError` mappings, looked up along the MRO.

    ``ErrorMap({KeyError: ProviderError("NOT_FOUND", ...), ValueError: lambda e: ...})``:
    the most specific registered base class of the raised exception wins. A mapper that
    raises, or returns something other than a `ProviderError`, leaves the exception
    unhandled (answered as ``INTERNAL_ERROR``): a broken mapping must not hide a bug.

    Raises:
        ConfigurationError: a key that is not an exception class, or a value that is
            neither a `ProviderError` nor callable.
    """

    __slots__ = ("_mappers",)

    def __init__(self, mappings: Mapping[type[BaseException], ExceptionMapper] | None = None):
        checked: dict[type[BaseException], ExceptionMapper] = {}
        items: Iterable[tuple[object, object]] = (mappings or {}).items()
        for kind, mapper in items:
            if not isinstance(kind, type) or not issubclass(kind, BaseException):
                raise ConfigurationError(f"errors: {kind!r} is not an exception class")
            if not isinstance(mapper, ProviderError) and not callable(mapper):
                raise ConfigurationError(
                    f"errors[{kind.__name__}] must be a ProviderError or a function returning one"
                )
            checked[kind] = mapper
        self._mappers: Mapping[type[BaseException], ExceptionMapper] = MappingProxyType(checked)

    def __len__(self) -> int:
        return len(self._mappers)

    def resolve(self, exc: BaseException) -> ProviderError | None:
        """The `ProviderError` for ``exc``: itself, its mapping, or None (unhandled)."""
        if isinstance(exc, ProviderError):
            return exc
        for kind in type(exc).__mro__:
            mapper = self._mappers.get(kind)
            if mapper is None:
                continue
            if isinstance(mapper, ProviderError):
                return mapper
            try:
                mapped: object = mapper(exc)
            except Exception:  # a broken mapper: the original exception stays unhandled
                _log.warning("the errors mapping for %s raised", kind.__name__, exc_info=True)
                return None
            if not isinstance(mapped, ProviderError):
                _log.warning("the errors mapping for %s returned no ProviderError", kind.__name__)
                return None
            return mapped
        return None
