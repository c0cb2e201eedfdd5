"""`RetryPolicy`: when to try a failed call again, how long to wait, and when to give up.

Policy:
- Only an `ApiError` can be retried, only when ``retry_on`` says so (default:
  ``error.transient``), and never when resending is unsafe whatever
  ``retry_on`` says. A request that never reached the server (DNS, connect)
  may be resent; one that may have reached it only when the client says it is
  safe (``resend_after_sent``: an idempotent method, an ``Idempotency-Key``
  the caller chose, or the caller's opt-in) and its body can be sent again.
- Waits are exponential with full jitter, capped (``U(0, min(max_backoff,
  initial_backoff*2^(n-1)))``), or exactly what ``Retry-After`` asked. A
  ``Retry-After`` above ``max_retry_after`` or past the deadline raises
  `RetryAfterTooLong` at once, without sleeping (``long_retry_after="cap"``:
  wait ``max_retry_after`` and retry instead).
- The deadline bounds the whole call: each attempt gets a `Deadline` (the
  call's, or the per-attempt total, whichever is first) that the transport
  enforces, and no wait may end past it. Every stop is named (`RetryStop`).
- A retry must be paid from the `RetryBudget`; an empty budget ends the call
  after the attempt just made (fail fast, no sleep).
- One orchestration for sync and async: `RetryLoop` decides everything and
  is iterated with ``for`` (sleeping with `time.sleep`) or ``async for``
  (sleeping with `asyncio.sleep`), as stamina's retry context. The error a
  client raises is the last attempt's, rebuilt once with ``attempts`` and
  ``retry_stopped_by`` (`RetryLoop.conclude`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal, TypeVar

import attrs

from .._model.checks import require_real
from .._model.classify import is_safe_to_retry
from .._model.enums import RetryStop
from .._model.errors import ApiError, ConfigurationError, RetryAfterTooLong
from .budget import RetryBudget
from .deadline import Deadline
from .hooks import RetryHook, acall_hook, call_hook

__all__ = [
    "Attempt",
    "RetryDetails",
    "RetryLoop",
    "RetryPolicy",
    "backoff_disabled",
    "is_safe_to_resend",
    "run_async",
    "run_sync",
    "set_backoff_disabled",
]

T = TypeVar("T")

logger = logging.getLogger("errdiscount_sdk")

# Read at call time so tests can substitute a fake clock for deadline checks.
_clock = time.monotonic

# The testing switch (see errdiscount_sdk.testing). A plain module global: it is
# flipped by test set-up code, read once per planned sleep.
_backoff_off = False


def backoff_disabled() -> bool:
    """True while `errdiscount_sdk.testing.disable_backoff` is in force."""
    return _backoff_off


def set_backoff_disabled(value: bool) -> bool:
    """Switch retry waits off (True) or on; returns the previous setting."""
    global _backoff_off
    previous, _backoff_off = _backoff_off, value
    return previous


def default_retry_on(error: ApiError) -> bool:
    """Retry what the classification calls transient (the loop checks resend safety)."""
    return error.transient


def is_safe_to_resend(error: ApiError) -> bool:
    """True when sending the same request again cannot apply it twice."""
    return is_safe_to_retry(error.request, request_sent=error.classification.request_sent)


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    require_real(value, attribute.name, minimum=0)


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        require_real(value, f"{attribute.name} (or None)", minimum=0, exclusive_minimum=True)


def _one_of(*choices: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in choices:
            raise ConfigurationError(f"{attribute.name} must be one of {choices}, got {value!r}")

    return check


def _callable(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ConfigurationError(f"{attribute.name} must be callable, got {value!r}")


def _budget(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, RetryBudget):
        raise ConfigurationError(f"budget must be a RetryBudget or None, got {value!r}")


def _attempts_in_range(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not int or not 1 <= value <= 20:
        raise ConfigurationError(f"max_attempts must be an int in [1, 20], got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How a client retries failed calls. One policy (and so one budget) per client.

    Args:
        max_attempts: attempts in all, the first included (1 disables retries).
        initial_backoff: the cap of the first jittered wait, in seconds.
        max_backoff: the cap of any jittered wait, in seconds.
        deadline: seconds from the start of the call by which the whole call
            ends (None: no deadline): every attempt's connect, send and body
            read is bounded by it (a body still arriving is abandoned within
            one read timeout of it), and a wait that would end past it ends
            the call (``retry_stopped_by="deadline"``).
        budget: the `RetryBudget` paying for retries (None: unlimited). The
            default is a fresh budget per policy; clients sharing a policy
            share its budget, which is what you want for one upstream.
        retry_on: predicate over the `ApiError` of a failed attempt (default:
            ``error.transient``). Whatever it says, an unsafe resend is never
            made: a POST/PATCH that may have reached the server (unless the
            client or the call opted in), or a one-shot body already sent.
        respect_retry_after: wait what ``Retry-After`` asks instead of backing off.
        max_retry_after: the longest ``Retry-After`` honoured, in seconds.
        long_retry_after: what a longer ``Retry-After`` does: ``"raise"``
            (default) raises `RetryAfterTooLong` at once, without sleeping;
            ``"cap"`` waits ``max_retry_after`` instead and retries (still
            within the deadline and the budget).

    Raises:
        ConfigurationError: a value out of range.
    """

    max_attempts: int = attrs.field(default=3, validator=_attempts_in_range)
    initial_backoff: float = attrs.field(default=0.1, validator=_non_negative)
    max_backoff: float = attrs.field(default=5.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    budget: RetryBudget | None = attrs.field(factory=RetryBudget, validator=_budget)
    retry_on: Callable[[ApiError], bool] = attrs.field(
        default=default_retry_on, validator=_callable
    )
    respect_retry_after: bool = True
    max_retry_after: float = attrs.field(default=30.0, validator=_non_negative)
    long_retry_after: Literal["raise", "cap"] = attrs.field(
        default="raise", validator=_one_of("raise", "cap")
    )


def _freeze(attributes: Mapping[str, str | int]) -> Mapping[str, str | int]:
    return MappingProxyType(dict(attributes))


@attrs.frozen
class RetryDetails:
    """What `on_retry` receives: a retry has been decided and is about to wait.

    Attributes:
        attempt: the number (1-based) of the attempt that just failed.
        wait: seconds the client waits before the next attempt (what it
            would wait when backoff is disabled for tests).
        cause: the `ApiError` of the failed attempt.
        elapsed: seconds since the first attempt started.
        attributes: OpenTelemetry HTTP semantic-convention attributes for the
            resend about to be made: ``error.type`` and (when a response
            arrived) ``http.response.status_code`` of the failed attempt, and
            ``http.request.resend_count`` of the next one (1 for the first retry).
    """

    attempt: int
    wait: float
    cause: ApiError
    elapsed: float
    attributes: Mapping[str, str | int] = attrs.field(converter=_freeze)

    @classmethod
    def build(cls, attempt: int, wait: float, cause: ApiError, elapsed: float) -> RetryDetails:
        attributes: dict[str, str | int] = {"error.type": cause.error_type}
        if cause.response is not None:
            attributes["http.response.status_code"] = cause.response.status_code
        attributes["http.request.resend_count"] = attempt
        return cls(attempt, wait, cause, elapsed, attributes)


def _retry_after(error: ApiError) -> float | None:
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    payload = error.payload
    if payload is not None and payload.retry_after is not None:
        return max(0.0, payload.retry_after)
    return None


def _full_jitter(policy: RetryPolicy, attempt: int) -> float:
    # U(0, min(cap, initial * 2^(n-1))): full jitter spreads a herd of clients the most.
    ceiling = min(policy.max_backoff, policy.initial_backoff * 2.0 ** min(attempt - 1, 64))
    return random.uniform(0.0, ceiling)  # jitter, not a secret


@attrs.frozen
class _Retry:
    """A decided retry: the hook's details and the wait before the next attempt."""

    details: RetryDetails
    wait: float


class Attempt:
    """One attempt of a call, yielded by `RetryLoop`; use it as a context manager.

    The ``with`` block runs the attempt. An `ApiError` leaving it is judged by
    the loop: when a retry follows, the error is swallowed and the loop yields
    the next attempt; otherwise it propagates (build the final error with
    `RetryLoop.conclude`). Any other exception propagates untouched.

    Attributes:
        number: 1 for the first attempt.
        deadline: the `Deadline` by which this attempt must end (the policy's
            deadline, or the per-attempt total, whichever comes first), or
            None: unbounded.
    """

    __slots__ = ("_loop", "deadline", "number")

    def __init__(self, loop: RetryLoop, number: int, deadline: Deadline | None) -> None:
        self._loop = loop
        self.number = number
        self.deadline = deadline

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._loop._succeeded(self.number)
            return False
        if isinstance(exc, ApiError):
            return self._loop._failed(self.number, exc)
        return False

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


class RetryLoop:
    """The attempts of one call under a `RetryPolicy`: ``for`` or ``async for`` over it.

        loop = RetryLoop(policy, on_retry=hook)
        try:
            for attempt in loop:          # async for attempt in loop: (AsyncClient)
                with attempt:
                    return send_once(attempt.deadline)
        except ApiError as error:
            raise loop.conclude(error) from error.__cause__

    Every decision (retry or not, how long to wait, which `RetryStop`) is made
    here, once, for both forms; only the sleep and the hook call differ.

    Args:
        policy: the `RetryPolicy`; None makes one attempt.
        on_retry: called with `RetryDetails` before each retry's wait (awaited
            first under ``async for`` when it returns an awaitable).
        resend_after_sent: the request may be resent after it may have reached
            the server (its method is idempotent, it carries an
            ``Idempotency-Key``, or the caller opted in). Requests that never
            left the client (DNS, connect) may always be resent. None: judge
            by each error's request (`is_safe_to_resend`).
        replayable: the body can be sent again (False for a generator or stream).
        attempt_timeout: seconds each attempt may take in all, or None.
    """

    __slots__ = (
        "_attempt_timeout",
        "_deadline",
        "_last_error",
        "_next",
        "_on_retry",
        "_policy",
        "_refused_wait",
        "_replayable",
        "_resend_after_sent",
        "_start",
        "_state",
        "attempts",
        "stopped_by",
    )

    def __init__(
        self,
        policy: RetryPolicy | None,
        *,
        on_retry: RetryHook | None = None,
        resend_after_sent: bool | None = None,
        replayable: bool = True,
        attempt_timeout: float | None = None,
    ) -> None:
        self._policy = policy
        self._on_retry = on_retry
        self._resend_after_sent = resend_after_sent
        self._replayable = replayable
        self._attempt_timeout = attempt_timeout
        self._start = _clock()
        deadline = policy.deadline if policy is not None else None
        self._deadline = None if deadline is None else self._start + deadline
        self._next: _Retry | None = None
        self._state = "ready"  # ready -> running -> (retrying -> running)* -> done
        self._last_error: ApiError | None = None
        self._refused_wait: tuple[float, float] | None = None
        self.attempts = 0
        """Attempts started so far."""
        self.stopped_by: RetryStop | None = None
        """Why no further attempt followed the last failure (None until then)."""

    # -- iteration: the only part that differs between sync and async ----------------------

    def __iter__(self) -> RetryLoop:
        return self

    def __next__(self) -> Attempt:
        if self._finished():
            raise StopIteration
        retry = self._take_retry()
        if retry is not None:
            call_hook("on_retry", self._on_retry, retry.details)
            if retry.wait > 0 and not _backoff_off:
                time.sleep(retry.wait)
        return self._begin()

    def __aiter__(self) -> RetryLoop:
        return self

    async def __anext__(self) -> Attempt:
        if self._finished():
            raise StopAsyncIteration
        retry = self._take_retry()
        if retry is not None:
            await acall_hook("on_retry", self._on_retry, retry.details)
            if retry.wait > 0 and not _backoff_off:
                import asyncio  # only async callers pay for loading it

                await asyncio.sleep(retry.wait)
        return self._begin()

    # -- decisions -----------------------------------------------------------------------

    def _finished(self) -> bool:
        if self._state == "running":
            raise RuntimeError("use each Attempt as a context manager before asking for the next")
        return self._state == "done"

    def _take_retry(self) -> _Retry | None:
        retry, self._next = self._next, None
        return retry

    def _begin(self) -> Attempt:
        self._state = "running"
        self.attempts += 1
        at = self._deadline
        if self._attempt_timeout is not None:
            own = _clock() + self._attempt_timeout
            at = own if at is None else min(at, own)
        return Attempt(self, self.attempts, None if at is None else Deadline(at, _clock))

    def _succeeded(self, number: int) -> None:
        self._state = "done"
        self._healthy(number)

    def _healthy(self, number: int) -> None:
        # A definitive answer means the server is fine: fund future retries.
        budget = self._policy.budget if self._policy is not None else None
        if budget is not None:
            if number == 1:
                budget.record_first_attempt_ok()
            else:
                budget.refund()

    def _stop(self, reason: RetryStop) -> bool:
        self._state = "done"
        self.stopped_by = reason
        return False

    def _failed(self, number: int, error: ApiError) -> bool:
        """Judge a failed attempt: True (swallow it) when a retry is planned."""
        self._last_error = error
        policy = self._policy
        if policy is None:
            return self._stop(RetryStop.RETRIES_DISABLED)
        if not error.transient:
            self._healthy(number)
            return self._stop(RetryStop.NOT_RETRYABLE)
        if not policy.retry_on(error):
            return self._stop(RetryStop.NOT_RETRYABLE)
        if error.classification.request_sent:
            if not self._replayable:
                return self._stop(RetryStop.ONE_SHOT_BODY)
            safe = self._resend_after_sent
            if not (is_safe_to_resend(error) if safe is None else safe):
                return self._stop(RetryStop.UNSAFE_RESEND)
        if number >= policy.max_attempts:
            return self._stop(RetryStop.MAX_ATTEMPTS)
        now = _clock()
        remaining = None if self._deadline is None else self._deadline - now
        if remaining is not None and remaining <= 0:
            logger.info("retry skipped: the deadline has passed (%s)", error.error_type)
            return self._stop(RetryStop.DEADLINE)
        asked = _retry_after(error) if policy.respect_retry_after else None
        capping = policy.long_retry_after == "cap"
        if asked is not None and asked > policy.max_retry_after:
            if not capping:
                self._refused_wait = (asked, policy.max_retry_after)
                return self._stop(RetryStop.RETRY_AFTER_TOO_LONG)
            asked = policy.max_retry_after
        if asked is not None and remaining is not None and asked > remaining and not capping:
            self._refused_wait = (asked, remaining)
            return self._stop(RetryStop.RETRY_AFTER_TOO_LONG)
        wait = _full_jitter(policy, number) if asked is None else asked
        if remaining is not None and wait >= remaining:
            logger.info("retry skipped: the deadline would pass (%s)", error.error_type)
            return self._stop(RetryStop.DEADLINE)
        if policy.budget is not None and not policy.budget.try_acquire():
            logger.info("retry skipped: retry budget exhausted (%s)", error.error_type)
            return self._stop(RetryStop.BUDGET)
        logger.info(
            "retrying after %s (attempt %d failed), waiting %.3fs",
            error.error_type,
            number,
            wait,
        )
        details = RetryDetails.build(number, wait, error, now - self._start)
        self._next = _Retry(details, wait)
        self._state = "retrying"
        return True

    # -- the outcome -----------------------------------------------------------------------

    def conclude(self, error: ApiError, **fields: Any) -> ApiError:
        """The error to raise for ``error``, built once: with ``attempts``,
        ``retry_stopped_by`` and ``fields`` (e.g. the enrichment's), as a
        `RetryAfterTooLong` of ``error``'s class when that is what stopped the call."""
        fields.setdefault("attempts", max(self.attempts, 1))
        fields.setdefault("retry_stopped_by", self.stopped_by)
        if self._refused_wait is not None and error is self._last_error:
            asked, limit = self._refused_wait
            return RetryAfterTooLong.for_error(error, asked, limit, **fields)
        return error.evolve(**fields)


def run_sync(
    policy: RetryPolicy | None,
    attempt: Callable[[], T],
    *,
    on_retry: RetryHook | None = None,
) -> T:
    """Run ``attempt`` under ``policy`` (None: once); raise the concluded last `ApiError`."""
    loop = RetryLoop(policy, on_retry=on_retry)
    try:
        for current in loop:
            with current:
                return attempt()
    except ApiError as error:
        raise loop.conclude(error) from error.__cause__
    raise AssertionError("unreachable: the loop ended without an outcome")  # pragma: no cover


async def run_async(
    policy: RetryPolicy | None,
    attempt: Callable[[], Awaitable[T]],
    *,
    on_retry: RetryHook | None = None,
) -> T:
    """The async twin of `run_sync`; ``on_retry`` may be sync or async."""
    loop = RetryLoop(policy, on_retry=on_retry)
    try:
        async for current in loop:
            with current:
                return await attempt()
    except ApiError as error:
        raise loop.conclude(error) from error.__cause__
    raise AssertionError("unreachable: the loop ended without an outcome")  # pragma: no cover
