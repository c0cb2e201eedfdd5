"""Helpers for testing code that uses errdiscount clients.

`disable_backoff` turns every retry wait off, process-wide, so that tests of
retrying code run at full speed (stamina's ``set_testing`` idea). Everything
else keeps working as in production: attempts are still counted, the retry
budget is still charged, `RetryAfterTooLong` is still raised, and `on_retry`
still receives the wait the client *would* have slept.

    from errdiscount_sdk.testing import disable_backoff

    with disable_backoff():
        ...  # retries happen back to back

    disable_backoff()  # or for a whole session (e.g. in a conftest fixture)
    ...
    enable_backoff()
"""

from __future__ import annotations

from types import TracebackType

from ._http.retry import backoff_disabled, set_backoff_disabled

__all__ = ["BackoffSwitch", "backoff_disabled", "disable_backoff", "enable_backoff"]


class BackoffSwitch:
    """Returned by `disable_backoff`; leaving its ``with`` block restores the previous setting."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> BackoffSwitch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        set_backoff_disabled(self._previous)


def disable_backoff() -> BackoffSwitch:
    """Turn retry waits off now; usable as a context manager that turns them back.

    The switch is process-wide (all threads, all event loops), as test set-up is.
    """
    return BackoffSwitch(set_backoff_disabled(True))


def enable_backoff() -> None:
    """Turn retry waits back on (the production behaviour)."""
    set_backoff_disabled(False)
