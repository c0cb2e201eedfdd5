from __future__ import annotations

import threading

import pytest

from errdiscount_sdk import ConfigurationError, RetryBudget


def test_a_fresh_budget_is_full_and_pays_exactly_max_tokens_retries() -> None:
    budget = RetryBudget(max_tokens=3, token_ratio=0.2)
    assert budget.tokens == 3
    assert [budget.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert budget.tokens == 0


def test_an_empty_budget_withdraws_nothing() -> None:
    budget = RetryBudget(max_tokens=1)
    assert budget.try_acquire()
    assert not budget.try_acquire()
    assert budget.tokens == 0


def test_deposits_add_up_exactly_to_one_retry() -> None:
    budget = RetryBudget(max_tokens=2, token_ratio=0.2)
    budget.try_acquire()
    budget.try_acquire()
    for _ in range(4):
        budget.record_first_attempt_ok()
    assert not budget.try_acquire()  # 0.8 of a retry is not a retry
    budget.record_first_attempt_ok()
    assert budget.tokens == 1.0
    assert budget.try_acquire()


def test_refund_gives_a_whole_token_back() -> None:
    budget = RetryBudget(max_tokens=2)
    budget.try_acquire()
    budget.refund()
    assert budget.tokens == 2


def test_the_bucket_never_exceeds_its_reserve() -> None:
    budget = RetryBudget(max_tokens=2, token_ratio=1)
    for _ in range(10):
        budget.record_first_attempt_ok()
        budget.refund()
    assert budget.tokens == 2


def test_zero_ratio_never_refills_from_first_attempts() -> None:
    budget = RetryBudget(max_tokens=1, token_ratio=0)
    budget.try_acquire()
    for _ in range(100):
        budget.record_first_attempt_ok()
    assert not budget.try_acquire()


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": 0}, {"max_tokens": 1001}, {"token_ratio": -0.1}, {"token_ratio": 1.5}],
)
def test_out_of_range_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryBudget(**kwargs)


def test_concurrent_withdrawals_never_overspend() -> None:
    budget = RetryBudget(max_tokens=500, token_ratio=0)
    granted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [budget.try_acquire() for _ in range(200)]
        with lock:
            granted.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 500
    assert budget.tokens == 0


def test_repr_shows_state_only() -> None:
    assert repr(RetryBudget(max_tokens=4, token_ratio=0.5)) == (
        "RetryBudget(tokens=4, max_tokens=4, token_ratio=0.5)"
    )
