"""Calling user hooks so that a broken hook can never break the call it observes.

Policy: a hook that raises is logged (``errdiscount_sdk`` logger, with the
traceback) and otherwise ignored; its result is ignored too. The async variant
also accepts coroutine functions, so `AsyncClient` hooks may be sync or async.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

__all__ = ["Hook", "acall_hook", "call_hook", "logger"]

logger = logging.getLogger("errdiscount_sdk")

Hook = Callable[..., object]
"""Any callable; its return value is ignored (awaited first when it is awaitable)."""


def call_hook(name: str, hook: Hook | None, *args: object) -> None:
    """Call a synchronous hook; log and swallow whatever it raises."""
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


async def acall_hook(name: str, hook: Hook | None, *args: object) -> None:
    """Call a sync or async hook; log and swallow whatever it raises."""
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("hook %s raised; the call goes on", name)
