"""The sink interface and the three outcomes of one delivery attempt."""

from __future__ import annotations

from typing import Protocol

import attrs


@attrs.frozen
class Delivered:
    """The receiver acknowledged the event (2xx, or the broker confirmed it)."""


@attrs.frozen
class Failed:
    """Not acknowledged; retry later (no sooner than ``retry_after`` seconds when given)."""

    error: str
    retry_after: float | None = None


@attrs.frozen
class Gone:
    """The receiver said it never wants events again (HTTP 410): disable the sink."""

    error: str


SinkOutcome = Delivered | Failed | Gone


class Sink(Protocol):
    """One destination. ``id`` names it in the deliveries table (stable across restarts)."""

    @property
    def id(self) -> str: ...

    def accepts(self, event_type: str) -> bool: ...

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> SinkOutcome: ...

    async def close(self) -> None: ...
