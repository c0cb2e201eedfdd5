"""Retry amplification and success rate: our RetryPolicy + RetryBudget vs naive tenacity.

Run: ``python benchmarks/retry_storm.py`` (a few seconds; no sleeping, no network).

Each scenario makes N sequential logical calls on ONE client-wide policy (so the
budget is shared, as in a real client) against an in-process attempt function
that fails with a transient, safely retryable 503 with probability p. Reported:

- attempts/call (amplification A = attempts / logical calls),
- success rate (calls that eventually returned).

Baselines measured in the same run: naive tenacity ``stop_after_attempt(3)``
retrying every `ApiError` (no wait), and no retries at all. Random scenarios
are repeated over several seeds (same seeds for every policy); the table shows
the mean and the worst seed.

Targets (issue 3): 100% outage, N=1000: A <= 1.01. 5% faults: success >= 99.9%
and A <= 1.06. 20% faults: success >= 99%.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import tenacity

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from errdiscount_sdk import (
    ApiError,
    Classification,
    ErrorCategory,
    RetryPolicy,
    ServiceUnavailable,
    Severity,
)
from errdiscount_sdk._http.retry import run_sync
from errdiscount_sdk.testing import disable_backoff

_REQUEST = httpx.Request("GET", "https://api.example.test/items")
_CLASSIFICATION = Classification(
    category=ErrorCategory.PROTOCOL,
    severity=Severity.SEVERE,
    transient=True,
    retryable=True,
    error_type="503",
    description="service unavailable",
    status_code=503,
)
_RESPONSE = httpx.Response(503, request=_REQUEST)


class FakeUpstream:
    """Fails each attempt independently with probability ``p``; counts attempts."""

    def __init__(self, p: float, seed: int) -> None:
        self.p = p
        self.rng = random.Random(seed)
        self.attempts = 0

    def __call__(self) -> str:
        self.attempts += 1
        if self.p >= 1 or self.rng.random() < self.p:
            raise ServiceUnavailable(
                "service unavailable",
                classification=_CLASSIFICATION,
                request=_REQUEST,
                response=_RESPONSE,
            )
        return "ok"


Runner = Callable[[FakeUpstream], None]


def ours() -> Runner:
    policy = RetryPolicy()  # defaults: 3 attempts, RetryBudget(max_tokens=8, token_ratio=0.2)
    return lambda upstream: run_sync(policy, upstream)


def naive_tenacity() -> Runner:
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ApiError),
        reraise=True,
    )
    return lambda upstream: retrying(upstream)


def no_retry() -> Runner:
    return lambda upstream: upstream()


POLICIES: dict[str, Callable[[], Runner]] = {
    "errdiscount (policy + budget)": ours,
    "tenacity stop_after_attempt(3)": naive_tenacity,
    "no retries": no_retry,
}


def measure(make: Callable[[], Runner], p: float, n: int, seed: int) -> tuple[float, float]:
    """One fresh client (fresh budget) making ``n`` calls; (attempts/call, success rate)."""
    run = make()
    upstream = FakeUpstream(p, seed)
    ok = 0
    for _ in range(n):
        try:
            run(upstream)
        except ApiError:
            continue
        ok += 1
    return upstream.attempts / n, ok / n


SCENARIOS: list[tuple[str, float, int, int, Callable[[float, float], bool] | None]] = [
    # (label, failure probability, calls per run, seeds, target check)
    ("100% outage", 1.0, 1000, 1, lambda a, s: a <= 1.01),
    ("5% faults", 0.05, 20_000, 5, lambda a, s: s >= 0.999 and a <= 1.06),
    ("20% faults", 0.20, 20_000, 5, lambda a, s: s >= 0.99),
    # No target: shows the budget capping the extra load of a half-down upstream.
    ("50% faults", 0.50, 20_000, 5, None),
]


def main() -> int:
    started = time.perf_counter()
    print(f"{'scenario':<14} {'policy':<32} {'attempts/call':>24} {'success':>22}  target")
    print(f"{'':<14} {'':<32} {'mean (worst seed)':>24} {'mean (worst seed)':>22}")
    all_met = True
    with disable_backoff():
        for label, p, n, seeds, check in SCENARIOS:
            for name, make in POLICIES.items():
                runs = [measure(make, p, n, seed) for seed in range(seeds)]
                a_mean = sum(a for a, _ in runs) / seeds
                s_mean = sum(s for _, s in runs) / seeds
                a_worst = max(a for a, _ in runs)
                s_worst = min(s for _, s in runs)
                verdict = ""
                if check is not None and name.startswith("errdiscount"):
                    met = check(a_worst, s_worst)
                    verdict = "met" if met else "MISSED"
                    all_met = all_met and met
                print(
                    f"{label:<14} {name:<32} {a_mean:>14.4f} ({a_worst:.4f}) "
                    f"{s_mean:>12.4%} ({s_worst:.4%})  {verdict}"
                )
    print(
        f"\n(n per run: outage 1000, random faults 20000 x 5 seeds; "
        f"{time.perf_counter() - started:.1f}s)"
    )
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
