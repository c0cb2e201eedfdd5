"""Which rollup table answers which part of a window, so that every sum is exact.

A window is first widened to whole minutes (the rollups' grain: the answer names the
window used). Its whole UTC days come from the daily rollups, the ragged edges before
the first and after the last whole day from the minute rollups; the spans do not
overlap and cover the window, so summing them equals summing the raw events.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from ._window import Window

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@attrs.frozen
class Span:
    """One table (``minute`` or ``day``) over ``[window.since, window.until)``."""

    grain: str
    window: Window


def spans(window: Window) -> tuple[Span, ...]:
    """The spans of a minute-aligned window: edges from minutes, whole days from days."""
    days = window.aligned(DAY)
    first_day = days.since if days.since == window.since else days.since + DAY
    last_day = days.until if days.until == window.until else days.until - DAY
    if first_day >= last_day:
        return (Span("minute", window),)
    parts = [
        Span("minute", Window(window.since, first_day)),
        Span("day", Window(first_day, last_day)),
        Span("minute", Window(last_day, window.until)),
    ]
    return tuple(part for part in parts if part.window.since < part.window.until)
