"""A recording event sink for the provider middleware tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from errdiscount_sdk.events import CallEvent, parse_event


class RecordingSink:
    """Keeps every event; `wait_for` blocks until one matches (events are recorded after
    the answer is sent, so a client can see the answer before the event exists)."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []
        self._changed = threading.Condition()

    def record(self, event: Mapping[str, Any]) -> None:
        # Every event the middleware hands on is a valid event of the contract (the
        # server validates with the same parse_event); a broken one fails the test.
        parsed = parse_event(event)
        assert isinstance(parsed, CallEvent) and parsed.source == "provider", event
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(
        self, matches: Callable[[Mapping[str, Any]], bool], timeout: float = 10.0
    ) -> Mapping[str, Any]:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((e for e in self.events if matches(e)), None), timeout
            )
        assert found is not None, f"no matching event among {self.events}"
        return found
