"""In-process token buckets with bounded memory (per client IP, per subject).

Each key has a bucket of ``burst`` tokens refilled at ``rate`` per second. At most
``max_keys`` buckets are kept; the least recently used is dropped first, which at worst
gives a forgotten client a full bucket again (fail open, never unbounded memory). The
limits are per process: with N replicas a client gets up to N times the rate, which is
documented (docs/server.md) — the exactly-once guarantees never depend on them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``acquire(key)`` returns 0 when allowed, else the seconds to wait (>= 1, whole)."""

    def __init__(
        self,
        *,
        rate_per_second: float,
        burst: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> int:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._store(key, tokens - 1, now)
                return 0
            self._store(key, tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
