"""`RetryBudget`: a token bucket that keeps retries from turning an outage into a storm.

Policy in one paragraph: a retry costs one token; a call whose *first* attempt
gets a definitive answer (success, or an error that is not worth retrying)
deposits ``token_ratio`` of a token; a retry that gets a definitive answer
gives its token back (it did not waste the server's time). The bucket holds at
most ``max_tokens``. So the retries that *fail* can never exceed
``max_tokens + token_ratio * healthy calls``: under a total outage nothing is
deposited and a client makes at most ``max_tokens`` retries in all, however
many calls it makes; under scattered faults the refunds keep the bucket full.
docs/retry.md gives the reasoning behind the defaults and the measured figures.
"""

from __future__ import annotations

import threading

from .._model.checks import require_real

__all__ = ["RetryBudget"]

# Tokens are kept as integer thousandths so that deposits of 0.2 add up exactly
# (five of them make one retry, not 0.9999999999999999 of one).
_SCALE = 1000


class RetryBudget:
    """A retry budget shared by every call of one client (thread- and asyncio-safe).

    Args:
        max_tokens: the reserve: how many retries the bucket can bank. A fresh
            bucket starts full. Under a total outage this is the total number of
            retries the client will make, so keep it small (default 8: at 1,000
            calls that is 1.008 attempts per call).
        token_ratio: tokens deposited by each call whose first attempt gets a
            definitive answer (default 0.2: failed retries stay below 20% of the
            healthy traffic, Finagle's ``percentCanRetry``).

    Raises:
        ConfigurationError: ``max_tokens`` is not in [1, 1000] or
            ``token_ratio`` not in [0, 1].

    The lock is held only for a few integer operations and never across an
    ``await``, so sharing one budget between threads and an event loop is safe.
    """

    __slots__ = ("_capacity", "_deposit", "_lock", "_tokens")

    def __init__(self, *, max_tokens: float = 8.0, token_ratio: float = 0.2) -> None:
        require_real(max_tokens, "max_tokens", minimum=1, maximum=1000)
        require_real(token_ratio, "token_ratio", minimum=0, maximum=1)
        self._capacity = round(max_tokens * _SCALE)
        self._deposit = round(token_ratio * _SCALE)
        self._tokens = self._capacity
        self._lock = threading.Lock()

    @property
    def max_tokens(self) -> float:
        """The most retries the bucket can bank."""
        return self._capacity / _SCALE

    @property
    def token_ratio(self) -> float:
        """Tokens deposited per healthy first attempt."""
        return self._deposit / _SCALE

    @property
    def tokens(self) -> float:
        """Retries currently affordable (a snapshot; other calls may change it)."""
        return self._tokens / _SCALE

    def try_acquire(self) -> bool:
        """Withdraw the cost of one retry; False (nothing withdrawn) when it cannot be paid."""
        with self._lock:
            if self._tokens < _SCALE:
                return False
            self._tokens -= _SCALE
            return True

    def record_first_attempt_ok(self) -> None:
        """A call's first attempt got a definitive answer: deposit ``token_ratio``."""
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + self._deposit)

    def refund(self) -> None:
        """A retry got a definitive answer: give its token back."""
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + _SCALE)

    def __repr__(self) -> str:
        return (
            f"RetryBudget(tokens={self.tokens:g}, max_tokens={self.max_tokens:g}, "
            f"token_ratio={self.token_ratio:g})"
        )
