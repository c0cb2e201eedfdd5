"""The parsed queries of the breakdown and time-series reports (docs/analytics.md).

`BreakdownQuery.from_params` and `TimeseriesQuery.from_params` take the query string as
a mapping of single values and the current time; they raise `InvalidReportQuery`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from errdiscount_sdk.wire import MAX_REPORT_POINTS, MAX_REPORT_TOP
from server_stub.store import GROUP_COLUMNS

from ._window import (
    InvalidReportQuery,
    Window,
    check_names,
    parse_choice,
    parse_float,
    parse_int,
)

__all__ = [
    "DIMENSIONS",
    "STEPS",
    "BreakdownQuery",
    "SuspectRule",
    "TimeseriesQuery",
]

#: the dimensions of a breakdown, in the order of the all-dimensions answer: the
#: columns the store groups its rollups by
DIMENSIONS: tuple[str, ...] = GROUP_COLUMNS
#: a time series' step names and lengths
STEPS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
MAX_TOP = MAX_REPORT_TOP
#: rows and columns of a cross-tab
MAX_CROSS_TOP = 10
MAX_POINTS = MAX_REPORT_POINTS
#: characters of an error code (the events' own cap, store MAX_ID)
MAX_ERROR_CODE = 128
_FILTERS = ("endpoint", "error_code")
_BREAKDOWN_PARAMS = frozenset(
    {"since", "until", "dimension", "by", "top", "min_share", "min_lift", "min_failures",
     *_FILTERS}
)  # fmt: skip
_TIMESERIES_PARAMS = frozenset({"since", "until", "step", *_FILTERS})


def _error_code(params: Mapping[str, str]) -> str | None:
    code = params.get("error_code")
    if code is not None and len(code) > MAX_ERROR_CODE:
        raise InvalidReportQuery(f"error_code is at most {MAX_ERROR_CODE} characters.")
    return code


@attrs.frozen
class SuspectRule:
    """When a value is a suspect: all three thresholds met (BubbleUp's lesson: the
    failure share alone means nothing without the share of calls, hence the lift)."""

    min_share: float = 0.5
    min_lift: float = 2.0
    min_failures: int = 20

    def flags(self, failures: int, failure_share: float, lift: float | None) -> bool:
        return (
            failures >= self.min_failures
            and failure_share >= self.min_share
            and lift is not None
            and lift >= self.min_lift
        )


@attrs.frozen
class BreakdownQuery:
    """One breakdown: ``dimension`` None means every dimension; ``by`` makes a cross-tab."""

    window: Window
    dimension: str | None = None
    by: str | None = None
    endpoint: str | None = None
    error_code: str | None = None
    top: int = 10
    rule: SuspectRule = SuspectRule()

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: datetime) -> BreakdownQuery:
        check_names(params, _BREAKDOWN_PARAMS)
        window = Window.from_params(params, now)
        dimension = parse_choice(params, "dimension", DIMENSIONS, None)
        by = parse_choice(params, "by", DIMENSIONS, None)
        if by is not None and dimension is None:
            raise InvalidReportQuery("by needs a dimension.")
        if by is not None and by == dimension:
            raise InvalidReportQuery("by must differ from dimension.")
        high = MAX_CROSS_TOP if by is not None else MAX_TOP
        rule = SuspectRule(
            min_share=parse_float(params, "min_share", low=0.0, high=1.0, default=0.5),
            min_lift=parse_float(params, "min_lift", low=0.0, high=1e6, default=2.0),
            min_failures=parse_int(params, "min_failures", low=0, high=1_000_000_000, default=20),
        )
        return cls(
            window=window,
            dimension=dimension,
            by=by,
            endpoint=params.get("endpoint"),
            error_code=_error_code(params),
            top=parse_int(params, "top", low=1, high=high, default=10),
            rule=rule,
        )


@attrs.frozen
class TimeseriesQuery:
    """Calls and failures per ``step`` over the window, with the incidents in it."""

    window: Window
    step: str = "hour"
    endpoint: str | None = None
    error_code: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: datetime) -> TimeseriesQuery:
        check_names(params, _TIMESERIES_PARAMS)
        window = Window.from_params(params, now)
        default = "hour" if window.until - window.since <= timedelta(days=7) else "day"
        step = parse_choice(params, "step", STEPS, default) or default
        steps = window.aligned(STEPS[step])
        points = (steps.until - steps.since) // STEPS[step]
        if points > MAX_POINTS:
            raise InvalidReportQuery(
                f"At most {MAX_POINTS} points: {points} {step}s asked; choose a longer step."
            )
        return cls(
            window=window,
            step=step,
            endpoint=params.get("endpoint"),
            error_code=_error_code(params),
        )
