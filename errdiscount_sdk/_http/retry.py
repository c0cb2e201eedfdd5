"""`RetryPolicy`: when to try a failed call again, how long to wait, and when to give up.

Policy:
- Only an `ApiError` can be retried, only when ``retry_on`` says so (default:
  ``error.retryable``, i.e. transient *and* safe), and never when resending is
  unsafe whatever ``retry_on`` says: the method must be idempotent
  (GET/HEAD/OPTIONS/PUT/DELETE/TRACE), or the request must carry an
  ``Idempotency-Key``, or the failure must have happened before the request
  was sent (DNS, connect).
- Waits are exponential with full jitter, capped (``U(0, min(max_backoff,
  initial_backoff*2^(n-1)))``), or exactly what ``Retry-After`` asked. A
  ``Retry-After`` above ``max_retry_after`` or past the deadline raises
  `RetryAfterTooLong` at once, without sleeping.
- A retry must be paid from the `RetryBudget`; an empty budget ends the call
  after the attempt just made (fail fast, no sleep).
- tenacity runs the loop, but its ``RetryError`` never escapes: the last
  domain error is raised, with ``.attempts`` set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import tenacity

from .._model.classify import is_safe_to_retry
from .._model.errors import ApiError, ConfigurationError, RetryAfterTooLong
from .budget import RetryBudget
from .hooks import Hook, acall_hook, call_hook

__all__ = [
    "RetryDetails",
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
    """Retry what the classification calls retryable (transient and safe)."""
    return error.retryable


def is_safe_to_resend(error: ApiError) -> bool:
    """True when sending the same request again cannot apply it twice."""
    return is_safe_to_retry(error.request, request_sent=error.classification.request_sent)


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise ConfigurationError(f"{attribute.name} must be > 0 or None, got {value!r}")


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
        deadline: seconds from the first attempt after which no retry starts
            (None: no deadline). A wait that would end past it ends the call.
        budget: the `RetryBudget` paying for retries (None: unlimited). The
            default is a fresh budget per policy; clients sharing a policy
            share its budget, which is what you want for one upstream.
        retry_on: predicate over the `ApiError` of a failed attempt. Whatever
            it says, an unsafe resend (a POST without ``Idempotency-Key`` that
            may have reached the server) is never made.
        respect_retry_after: wait what ``Retry-After`` asks instead of backing off.
        max_retry_after: the longest ``Retry-After`` honoured, in seconds.

    Raises:
        ConfigurationError: a value out of range.
    """

    max_attempts: int = attrs.field(default=3, validator=_attempts_in_range)
    initial_backoff: float = attrs.field(default=0.1, validator=_non_negative)
    max_backoff: float = attrs.field(default=5.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    budget: RetryBudget | None = attrs.field(factory=RetryBudget)
    retry_on: Callable[[ApiError], bool] = default_retry_on
    respect_retry_after: bool = True
    max_retry_after: float = attrs.field(default=30.0, validator=_non_negative)


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


class _CallPlan:
    """The per-call decisions tenacity asks for (tenacity objects are per call too)."""

    __slots__ = ("policy", "start", "stop_now")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.start = _clock()
        self.stop_now = False

    def healthy(self, attempt: int) -> None:
        # A definitive answer means the server is fine: fund future retries.
        budget = self.policy.budget
        if budget is not None:
            if attempt == 1:
                budget.record_first_attempt_ok()
            else:
                budget.refund()

    def retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        if not isinstance(error, ApiError) or isinstance(error, RetryAfterTooLong):
            return False
        if not error.transient:
            self.healthy(state.attempt_number)
        return bool(self.policy.retry_on(error)) and is_safe_to_resend(error)

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Plan the next wait, or decide to stop (``stop_now``) or raise."""
        policy = self.policy
        attempt = state.attempt_number
        error = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(error, ApiError)  # retry() let only ApiErrors through
        if attempt >= policy.max_attempts:
            self.stop_now = True
            return 0.0
        elapsed = _clock() - self.start
        remaining = None if policy.deadline is None else policy.deadline - elapsed
        asked = _retry_after(error) if policy.respect_retry_after else None
        if asked is not None:
            if asked > policy.max_retry_after:
                raise RetryAfterTooLong(error, asked, policy.max_retry_after) from error
            if remaining is not None and asked > remaining:
                raise RetryAfterTooLong(error, asked, max(remaining, 0.0)) from error
            wait = asked
        else:
            # tenacity's wait_random_exponential is U(0, min(cap, initial*2^(n-1))):
            # full jitter, which spreads a herd of clients the most.
            backoff = tenacity.wait_random_exponential(
                multiplier=policy.initial_backoff, max=policy.max_backoff
            )
            wait = float(backoff(state))
            if remaining is not None and wait > remaining:
                logger.info("retry skipped: the deadline would pass (%s)", error.error_type)
                self.stop_now = True
                return 0.0
        if policy.budget is not None and not policy.budget.try_acquire():
            logger.info("retry skipped: retry budget exhausted (%s)", error.error_type)
            self.stop_now = True
            return 0.0
        return wait

    def stop(self, state: tenacity.RetryCallState) -> bool:
        return self.stop_now

    def details(self, state: tenacity.RetryCallState) -> RetryDetails:
        error = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(error, ApiError)
        wait = state.upcoming_sleep
        logger.info(
            "retrying after %s (attempt %d failed), waiting %.3fs",
            error.error_type,
            state.attempt_number,
            wait,
        )
        return RetryDetails.build(state.attempt_number, wait, error, _clock() - self.start)


def _retry_after(error: ApiError) -> float | None:
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    payload = error.payload
    if payload is not None and payload.retry_after is not None:
        return max(0.0, payload.retry_after)
    return None


def _sleep(seconds: float) -> None:
    if seconds > 0 and not _backoff_off:
        time.sleep(seconds)


async def _asleep(seconds: float) -> None:
    if seconds > 0 and not _backoff_off:
        await asyncio.sleep(seconds)


def _mark_attempts(error: BaseException, attempt: int) -> None:
    if isinstance(error, ApiError):
        error.attempts = attempt


def run_sync(
    policy: RetryPolicy | None,
    attempt: Callable[[], T],
    *,
    on_retry: Hook | None = None,
) -> T:
    """Run ``attempt`` under ``policy`` (None: once). Raises the last `ApiError`.

    The first attempt runs outside tenacity, so a call that succeeds at once
    pays nothing for the retry machinery; tenacity takes over from the first
    failure (replaying it as its own attempt 1, so numbering and decisions
    are tenacity's).

    Raises:
        ApiError: the last attempt's error, with ``.attempts`` set.
        RetryAfterTooLong: the server asked to wait longer than allowed.
    """
    plan = _CallPlan(policy) if policy is not None else None
    try:
        result = attempt()
    except ApiError as error:
        error.attempts = 1
        if plan is None:
            raise
        first: ApiError | None = error
    else:
        if plan is not None:
            plan.healthy(1)
        return result

    def before_sleep(state: tenacity.RetryCallState) -> None:
        call_hook("on_retry", on_retry, plan.details(state))

    retrying = tenacity.Retrying(
        stop=plan.stop,
        wait=plan.wait,
        retry=plan.retry,
        before_sleep=before_sleep,
        sleep=_sleep,
        reraise=True,
    )
    for attempt_manager in retrying:
        with attempt_manager:
            if first is not None:
                replay, first = first, None
                raise replay
            number = attempt_manager.retry_state.attempt_number
            try:
                result = attempt()
            except BaseException as error:
                _mark_attempts(error, number)
                raise
            plan.healthy(number)
            return result
    raise AssertionError("unreachable: tenacity ended without an outcome")  # pragma: no cover


async def run_async(
    policy: RetryPolicy | None,
    attempt: Callable[[], Awaitable[T]],
    *,
    on_retry: Hook | None = None,
) -> T:
    """The async twin of `run_sync`; ``on_retry`` may be sync or async."""
    plan = _CallPlan(policy) if policy is not None else None
    try:
        result = await attempt()
    except ApiError as error:
        error.attempts = 1
        if plan is None:
            raise
        first: ApiError | None = error
    else:
        if plan is not None:
            plan.healthy(1)
        return result

    async def before_sleep(state: tenacity.RetryCallState) -> None:
        await acall_hook("on_retry", on_retry, plan.details(state))

    retrying = tenacity.AsyncRetrying(
        stop=plan.stop,
        wait=plan.wait,
        retry=plan.retry,
        before_sleep=before_sleep,
        sleep=_asleep,
        reraise=True,
    )
    async for attempt_manager in retrying:
        with attempt_manager:
            if first is not None:
                replay, first = first, None
                raise replay
            number = attempt_manager.retry_state.attempt_number
            try:
                result = await attempt()
            except BaseException as error:
                _mark_attempts(error, number)
                raise
            plan.healthy(number)
            return result
    raise AssertionError("unreachable: tenacity ended without an outcome")  # pragma: no cover
