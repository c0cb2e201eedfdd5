from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

import errdiscount_sdk._http.retry as retry_module
from errdiscount_sdk import (
    ApiError,
    Classification,
    ConfigurationError,
    ConnectFailed,
    ErrorCategory,
    NotFound,
    RetryAfterTooLong,
    RetryBudget,
    RetryDetails,
    RetryPolicy,
    RetryStop,
    ServiceUnavailable,
    Severity,
)
from errdiscount_sdk._http.retry import RetryLoop, is_safe_to_resend, run_async, run_sync
from errdiscount_sdk.testing import disable_backoff


def make_error(
    cls: type[ApiError] = ServiceUnavailable,
    *,
    status: int | None = 503,
    transient: bool = True,
    retryable: bool = True,
    retry_after: float | None = None,
    request_sent: bool = True,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> ApiError:
    request = httpx.Request(method, "https://api.example.test/items", headers=headers)
    classification = Classification(
        category=ErrorCategory.PROTOCOL if status else ErrorCategory.NETWORK,
        severity=Severity.SEVERE,
        transient=transient,
        retryable=retryable,
        error_type=str(status) if status else "connect_error",
        description="test failure",
        status_code=status,
        retry_after=retry_after,
        request_sent=request_sent,
    )
    response = httpx.Response(status, request=request) if status else None
    return cls("failed", classification=classification, request=request, response=response)


class Flaky:
    """An attempt function failing with fresh errors ``failures`` times, then returning "ok"."""

    def __init__(self, failures: int, factory: Callable[[], ApiError] = make_error) -> None:
        self.failures = failures
        self.factory = factory
        self.calls = 0
        self.raised: list[ApiError] = []

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            error = self.factory()
            self.raised.append(error)
            raise error
        return "ok"

    async def acall(self) -> str:
        return self()


@pytest.fixture
def no_backoff() -> Iterator[None]:
    with disable_backoff():
        yield


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record (and skip) every real sleep the retry loop makes."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def fast_policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(**{"initial_backoff": 0.01, "max_backoff": 0.02, **kwargs})  # type: ignore[arg-type]


def test_success_on_first_attempt_deposits_into_the_budget(no_backoff: None) -> None:
    budget = RetryBudget(max_tokens=2, token_ratio=0.5)
    budget.try_acquire()
    flaky = Flaky(0)
    assert run_sync(fast_policy(budget=budget), flaky) == "ok"
    assert flaky.calls == 1
    assert budget.tokens == 1.5


def test_flaky_call_succeeds_on_third_attempt_and_refunds(no_backoff: None) -> None:
    budget = RetryBudget(max_tokens=5)
    details: list[RetryDetails] = []
    flaky = Flaky(2)
    assert run_sync(fast_policy(budget=budget), flaky, on_retry=details.append) == "ok"
    assert flaky.calls == 3
    assert [d.attempt for d in details] == [1, 2]
    assert [d.cause for d in details] == flaky.raised
    # two retries paid, the successful one refunded
    assert budget.tokens == 4


def test_exhausted_attempts_raise_the_last_domain_error_rebuilt_once(no_backoff: None) -> None:
    flaky = Flaky(10)
    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(fast_policy(), flaky)
    # A copy of the last attempt's error, complete with what the end of the call knows;
    # the attempt's own error is left as it was built.
    assert caught.value is not flaky.raised[-1]
    assert caught.value.classification is flaky.raised[-1].classification
    assert flaky.raised[-1].attempts == 1 and flaky.raised[-1].retry_stopped_by is None
    assert caught.value.attempts == 3
    assert caught.value.retry_stopped_by is RetryStop.MAX_ATTEMPTS
    assert flaky.calls == 3


def test_non_retryable_error_is_raised_at_once(no_backoff: None) -> None:
    flaky = Flaky(5, lambda: make_error(NotFound, status=404, transient=False, retryable=False))
    with pytest.raises(NotFound) as caught:
        run_sync(fast_policy(), flaky)
    assert caught.value.attempts == 1
    assert flaky.calls == 1


def test_a_definitive_error_on_first_attempt_funds_the_budget(no_backoff: None) -> None:
    budget = RetryBudget(max_tokens=1, token_ratio=1)
    budget.try_acquire()
    flaky = Flaky(1, lambda: make_error(NotFound, status=404, transient=False, retryable=False))
    with pytest.raises(NotFound):
        run_sync(fast_policy(budget=budget), flaky)
    assert budget.tokens == 1


def test_a_custom_predicate_can_never_resend_an_unsafe_post(no_backoff: None) -> None:
    flaky = Flaky(5, lambda: make_error(method="POST", retryable=False))
    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(fast_policy(retry_on=lambda error: True), flaky)
    assert caught.value.attempts == 1


def test_a_post_with_an_idempotency_key_is_retried(no_backoff: None) -> None:
    flaky = Flaky(2, lambda: make_error(method="POST", headers={"Idempotency-Key": "k1"}))
    assert run_sync(fast_policy(), flaky) == "ok"
    assert flaky.calls == 3


def test_a_post_that_never_left_is_retried(no_backoff: None) -> None:
    flaky = Flaky(
        1, lambda: make_error(ConnectFailed, status=None, method="POST", request_sent=False)
    )
    assert run_sync(fast_policy(), flaky) == "ok"
    assert flaky.calls == 2


@pytest.mark.parametrize(
    ("method", "headers", "sent", "safe"),
    [
        ("GET", None, True, True),
        ("delete", None, True, True),
        ("PUT", None, True, True),
        ("POST", None, True, False),
        ("PATCH", None, True, False),
        ("PATCH", {"idempotency-key": "x"}, True, True),
        ("POST", None, False, True),
    ],
)
def test_safe_to_resend(
    method: str, headers: dict[str, str] | None, sent: bool, safe: bool
) -> None:
    error = make_error(method=method, headers=headers, request_sent=sent, retryable=False)
    assert is_safe_to_resend(error) is safe


def test_retry_on_can_narrow_what_is_retried(no_backoff: None) -> None:
    flaky = Flaky(2)
    with pytest.raises(ServiceUnavailable):
        run_sync(fast_policy(retry_on=lambda error: error.status_code != 503), flaky)
    assert flaky.calls == 1


def test_retry_after_is_honoured_exactly(sleeps: list[float]) -> None:
    details: list[RetryDetails] = []
    flaky = Flaky(1, lambda: make_error(retry_after=2.5))
    assert run_sync(fast_policy(), flaky, on_retry=details.append) == "ok"
    assert sleeps == [2.5]
    assert details[0].wait == 2.5


def test_retry_after_is_ignored_when_asked(sleeps: list[float]) -> None:
    flaky = Flaky(1, lambda: make_error(retry_after=2.5))
    run_sync(fast_policy(respect_retry_after=False), flaky)
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.01


def test_retry_after_above_the_cap_raises_without_sleeping(sleeps: list[float]) -> None:
    flaky = Flaky(5, lambda: make_error(retry_after=120))
    with pytest.raises(RetryAfterTooLong) as caught:
        run_sync(fast_policy(max_retry_after=30), flaky)
    assert sleeps == []
    assert flaky.calls == 1
    error = caught.value
    assert (error.requested_wait, error.limit, error.attempts) == (120, 30, 1)
    assert error.last_error is flaky.raised[0]
    assert error.status_code == 503


def test_retry_after_past_the_deadline_raises_without_sleeping(sleeps: list[float]) -> None:
    flaky = Flaky(5, lambda: make_error(retry_after=20))
    with pytest.raises(RetryAfterTooLong) as caught:
        run_sync(fast_policy(deadline=10, max_retry_after=60), flaky)
    assert sleeps == []
    assert caught.value.requested_wait == 20
    assert 0 <= caught.value.limit <= 10


def test_retry_after_on_the_last_attempt_raises_the_error_itself(sleeps: list[float]) -> None:
    flaky = Flaky(5, lambda: make_error(retry_after=120))
    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(fast_policy(max_attempts=1), flaky)
    assert not isinstance(caught.value, RetryAfterTooLong)


def test_a_backoff_past_the_deadline_ends_the_call(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    now = [100.0]
    monkeypatch.setattr(retry_module, "_clock", lambda: now[0])

    def attempt() -> str:
        now[0] += 9.5  # each attempt takes 9.5 s of a 10 s deadline
        raise make_error()

    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(RetryPolicy(initial_backoff=1, max_backoff=1, deadline=10), attempt)
    # U(0, 1) fits in the 0.5 s left only sometimes; never a third attempt.
    assert caught.value.attempts in (1, 2)
    assert len(sleeps) == caught.value.attempts - 1


def test_an_empty_budget_fails_fast_after_the_first_attempt(sleeps: list[float]) -> None:
    budget = RetryBudget(max_tokens=1)
    assert budget.try_acquire()
    flaky = Flaky(5)
    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(fast_policy(budget=budget), flaky)
    assert (caught.value.attempts, flaky.calls, sleeps) == (1, 1, [])


def test_the_budget_is_shared_across_calls(no_backoff: None) -> None:
    policy = fast_policy(budget=RetryBudget(max_tokens=3, token_ratio=0))
    attempts = []
    for _ in range(4):
        with pytest.raises(ServiceUnavailable) as caught:
            run_sync(policy, Flaky(10))
        attempts.append(caught.value.attempts)
    assert attempts == [3, 2, 1, 1]


def test_no_budget_means_every_allowed_retry(no_backoff: None) -> None:
    policy = fast_policy(budget=None, max_attempts=4)
    for _ in range(5):
        with pytest.raises(ServiceUnavailable) as caught:
            run_sync(policy, Flaky(10))
        assert caught.value.attempts == 4


def test_full_jitter_stays_under_the_exponential_cap(no_backoff: None) -> None:
    details: list[RetryDetails] = []
    policy = RetryPolicy(
        max_attempts=7, initial_backoff=1, max_backoff=4, budget=None, deadline=None
    )
    for _ in range(30):
        with pytest.raises(ServiceUnavailable):
            run_sync(policy, Flaky(10), on_retry=details.append)
    caps = {1: 1, 2: 2, 3: 4, 4: 4, 5: 4, 6: 4}
    assert all(0 <= d.wait <= caps[d.attempt] for d in details)
    # jitter: the waits are spread, not all the cap
    assert len({round(d.wait, 6) for d in details}) > 100


def test_waits_are_slept_when_backoff_is_on(sleeps: list[float]) -> None:
    details: list[RetryDetails] = []
    run_sync(fast_policy(), Flaky(2), on_retry=details.append)
    assert sleeps == [d.wait for d in details if d.wait > 0]


def test_retry_details_carry_open_telemetry_attributes(no_backoff: None) -> None:
    details: list[RetryDetails] = []
    run_sync(fast_policy(), Flaky(2), on_retry=details.append)
    assert dict(details[0].attributes) == {
        "error.type": "503",
        "http.response.status_code": 503,
        "http.request.resend_count": 1,
    }
    assert details[1].attributes["http.request.resend_count"] == 2
    assert details[1].elapsed >= 0


def test_retry_details_have_no_status_without_a_response(no_backoff: None) -> None:
    details: list[RetryDetails] = []
    flaky = Flaky(1, lambda: make_error(ConnectFailed, status=None, request_sent=False))
    run_sync(fast_policy(), flaky, on_retry=details.append)
    assert dict(details[0].attributes) == {
        "error.type": "connect_error",
        "http.request.resend_count": 1,
    }


def test_a_raising_on_retry_hook_is_logged_and_the_call_goes_on(
    no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(details: RetryDetails) -> None:
        raise RuntimeError("hook bug")

    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk"):
        assert run_sync(fast_policy(), Flaky(1), on_retry=broken) == "ok"
    assert "hook on_retry raised" in caplog.text


def test_without_a_policy_there_is_one_attempt() -> None:
    flaky = Flaky(1)
    with pytest.raises(ServiceUnavailable) as caught:
        run_sync(None, flaky)
    assert (caught.value.attempts, flaky.calls) == (1, 1)


def test_foreign_exceptions_propagate_untouched(no_backoff: None) -> None:
    calls = []

    def attempt() -> str:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_sync(fast_policy(), attempt)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 21},
        {"max_attempts": 2.0},
        {"max_attempts": True},
        {"initial_backoff": -1},
        {"max_backoff": float("nan")},
        {"deadline": 0},
        {"max_retry_after": -5},
    ],
)
def test_bad_policy_values_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_each_policy_gets_its_own_budget() -> None:
    assert RetryPolicy().budget is not RetryPolicy().budget


# --- async mirror -----------------------------------------------------------------------


async def test_async_flaky_call_succeeds_with_an_async_hook(no_backoff: None) -> None:
    seen: list[int] = []

    async def on_retry(details: RetryDetails) -> None:
        seen.append(details.attempt)

    flaky = Flaky(2)
    assert await run_async(fast_policy(), flaky.acall, on_retry=on_retry) == "ok"
    assert (flaky.calls, seen) == (3, [1, 2])


async def test_async_exhausted_attempts_raise_the_last_error(no_backoff: None) -> None:
    flaky = Flaky(10)
    with pytest.raises(ServiceUnavailable) as caught:
        await run_async(fast_policy(), flaky.acall)
    assert caught.value.classification is flaky.raised[-1].classification
    assert caught.value.attempts == 3
    assert caught.value.retry_stopped_by is RetryStop.MAX_ATTEMPTS


async def test_async_retry_after_above_the_cap_raises(no_backoff: None) -> None:
    flaky = Flaky(5, lambda: make_error(retry_after=600))
    with pytest.raises(RetryAfterTooLong) as caught:
        await run_async(fast_policy(), flaky.acall)
    assert caught.value.requested_wait == 600
    assert flaky.calls == 1


async def test_async_unsafe_post_is_not_resent(no_backoff: None) -> None:
    flaky = Flaky(5, lambda: make_error(method="POST", retryable=False))
    with pytest.raises(ServiceUnavailable):
        await run_async(fast_policy(retry_on=lambda error: True), flaky.acall)
    assert flaky.calls == 1


async def test_async_empty_budget_fails_fast(no_backoff: None) -> None:
    budget = RetryBudget(max_tokens=1)
    budget.try_acquire()
    flaky = Flaky(5)
    with pytest.raises(ServiceUnavailable) as caught:
        await run_async(fast_policy(budget=budget), flaky.acall)
    assert caught.value.attempts == 1


async def test_async_raising_hook_is_logged(
    no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(details: RetryDetails) -> None:
        raise RuntimeError("hook bug")

    with caplog.at_level(logging.ERROR, logger="errdiscount_sdk"):
        assert await run_async(fast_policy(), Flaky(1).acall, on_retry=broken) == "ok"
    assert "hook on_retry raised" in caplog.text


async def test_async_without_policy_one_attempt() -> None:
    flaky = Flaky(1)
    with pytest.raises(ServiceUnavailable) as caught:
        await run_async(None, flaky.acall)
    assert caught.value.attempts == 1


# -- one orchestration: the sync and async forms of RetryLoop decide the same ---------------

SCRIPTS: dict[str, tuple[Callable[[], ApiError], dict[str, object], RetryStop, int]] = {
    "max_attempts": (make_error, {}, RetryStop.MAX_ATTEMPTS, 3),
    "not_retryable": (
        lambda: make_error(NotFound, status=404, transient=False, retryable=False),
        {},
        RetryStop.NOT_RETRYABLE,
        1,
    ),
    "unsafe_resend": (
        lambda: make_error(method="POST", retryable=False),
        {"retry_on": lambda error: True},
        RetryStop.UNSAFE_RESEND,
        1,
    ),
    "retry_after": (lambda: make_error(retry_after=600), {}, RetryStop.RETRY_AFTER_TOO_LONG, 1),
    "budget": (make_error, {"budget": RetryBudget(max_tokens=1)}, RetryStop.BUDGET, 2),
}


def _loop_for(name: str) -> tuple[RetryLoop, Flaky]:
    factory, overrides, _, _ = SCRIPTS[name]
    if "budget" in overrides:
        overrides = {**overrides, "budget": RetryBudget(max_tokens=1)}
    return RetryLoop(fast_policy(**overrides)), Flaky(10, factory)


def drive(loop: RetryLoop, attempt_fn: Callable[[], object]) -> ApiError:
    """Run the loop the way the clients do; return the error that left it."""
    try:
        for attempt in loop:
            with attempt:
                attempt_fn()
    except ApiError as error:
        return error
    raise AssertionError("the loop ended without an error")


async def adrive(loop: RetryLoop, attempt_fn: Callable[[], Awaitable[object]]) -> ApiError:
    try:
        async for attempt in loop:
            with attempt:
                await attempt_fn()
    except ApiError as error:
        return error
    raise AssertionError("the loop ended without an error")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_sync_and_async_iteration_share_every_decision(name: str, no_backoff: None) -> None:
    _, _, stop, attempts = SCRIPTS[name]
    outcomes = []
    loop, flaky = _loop_for(name)
    error = drive(loop, flaky)
    outcomes.append((loop.stopped_by, loop.attempts, type(loop.conclude(error))))
    aloop, aflaky = _loop_for(name)
    error = await adrive(aloop, aflaky.acall)
    outcomes.append((aloop.stopped_by, aloop.attempts, type(aloop.conclude(error))))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][:2] == (stop, attempts)


def test_a_loop_refuses_to_go_on_when_an_attempt_was_not_entered(no_backoff: None) -> None:
    loop = RetryLoop(fast_policy())
    next(loop)
    with pytest.raises(RuntimeError, match="context manager"):
        next(loop)


def test_concluding_builds_a_complete_copy_and_leaves_the_attempt_error_alone(
    no_backoff: None,
) -> None:
    loop = RetryLoop(fast_policy(max_attempts=2))
    last = drive(loop, Flaky(5))
    final = loop.conclude(last, alert_url="https://status.example/1")
    assert (final.attempts, final.retry_stopped_by) == (2, RetryStop.MAX_ATTEMPTS)
    assert final.alert_url == "https://status.example/1"
    assert "after 2 attempts" in str(final)
    assert (last.attempts, last.alert_url) == (1, None)
