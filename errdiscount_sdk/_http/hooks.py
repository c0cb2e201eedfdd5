"""The hooks a client calls, one `Protocol` each, and calling them so that a broken hook can
never break the call it observes.

Policy: a hook that raises is logged (``errdiscount_sdk`` logger, with the
traceback) and otherwise ignored; its result is ignored too. `AsyncClient`
also awaits what a hook returns, so its hooks may be sync or async; a sync
client that gets an awaitable back closes it and logs a warning.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._model.errors import ApiError
    from .retry import RetryDetails

__all__ = [
    "AlertHook",
    "DiscountHook",
    "ErrorHook",
    "RetryHook",
    "acall_hook",
    "call_hook",
    "logger",
]

logger = logging.getLogger("errdiscount_sdk")


class RetryHook(Protocol):
    """``on_retry(details)``: a retry was decided and is about to wait ``details.wait``."""

    def __call__(self, details: RetryDetails, /) -> object: ...


class ErrorHook(Protocol):
    """``on_error(error)``: once per failed call, with the final error, before it is raised."""

    def __call__(self, error: ApiError, /) -> object: ...


class DiscountHook(Protocol):
    """``on_discount(token, error)``: the verified `DiscountToken` (the raw token string
    when the client has no verifier) and the final error that carried it."""

    def __call__(self, token: Any, error: ApiError, /) -> object: ...


class AlertHook(Protocol):
    """``on_alert(url, error)``: an alert URL the client's `AlertUrlPolicy` allowed."""

    def __call__(self, url: str, error: ApiError, /) -> object: ...


def call_hook(name: str, hook: Any, *args: object) -> None:
    """Call a synchronous hook (None: nothing); log and swallow whatever it raises."""
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            # A coroutine handed to a sync client would never run: say so once
            # per call instead of leaking a "never awaited" warning.
            close = getattr(result, "close", None)
            if callable(close):
                close()
            logger.warning("hook %s returned an awaitable; sync clients need sync hooks", name)
    except Exception:
        logger.exception("hook %s raised; the call goes on", name)


async def acall_hook(name: str, hook: Any, *args: object) -> None:
    """Call a sync or async hook (None: nothing); log and swallow whatever it raises."""
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("hook %s raised; the call goes on", name)
