"""`Deadline`: the instant by which an attempt must be over, on one clock.

The retry loop makes one per attempt (the policy's deadline or the per-attempt
total, whichever comes first); the transport glue reads it to cap httpx's
per-operation timeouts and to stop reading a body that trickles past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

__all__ = ["Deadline"]


@attrs.frozen
class Deadline:
    """An instant on ``clock`` (seconds, `time.monotonic` by default)."""

    at: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.clock()

    def passed(self) -> bool:
        return self.clock() >= self.at
