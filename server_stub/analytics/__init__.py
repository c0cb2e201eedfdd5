"""Report queries over rollups and the ledger (docs/analytics.md).

Each report is a function of the store and a parsed query returning the JSON-ready
value its route sends; the queries parse themselves (``from_params``) and raise
`InvalidReportQuery`, which the routes answer with a 400.
"""

from ._breakdown import breakdown
from ._funnel import CompensationQuery, compensation
from ._outcomes import OutcomesQuery, outcomes, wilson_interval
from ._query import DIMENSIONS, STEPS, BreakdownQuery, SuspectRule, TimeseriesQuery
from ._timeseries import timeseries
from ._window import InvalidReportQuery, Window, single_values

__all__ = [
    "DIMENSIONS",
    "STEPS",
    "BreakdownQuery",
    "CompensationQuery",
    "InvalidReportQuery",
    "OutcomesQuery",
    "SuspectRule",
    "TimeseriesQuery",
    "Window",
    "breakdown",
    "compensation",
    "outcomes",
    "single_values",
    "timeseries",
    "wilson_interval",
]
