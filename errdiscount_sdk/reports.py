"""Reports of the analytics API, drawn: SVG charts, terminal tables, CSV and PNG.

Pure functions, no I/O: parse what ``GET /v1/reports/*`` returned (docs/analytics.md)
into checked values, then draw them. ``errdiscount report`` and the server's
``/dashboard`` use exactly these.

```python
from errdiscount_sdk.reports import breakdown_chart, breakdown_table, parse_breakdowns

for report in parse_breakdowns(document):       # InvalidReport if it is not one
    print(breakdown_table(report))               # suspects marked "*" and "◀ suspect"
    svg = breakdown_chart(report).svg("os")      # <svg role="img"> with <title>/<desc>
```

PNG needs the optional extra ``png`` (cairosvg): `svg_to_png` raises `PngUnavailable`
(a `ConfigurationError`) without it.
"""

from ._analytics.errors import InvalidReport, PngUnavailable
from ._analytics.labels import ChartLabels
from ._analytics.model import (
    DIMENSIONS,
    MAX_POINTS,
    MAX_TEXT,
    MAX_VALUES,
    Breakdown,
    BreakdownValue,
    Budget,
    CompensationReport,
    Cost,
    CrossTab,
    CrossTabRow,
    Funnel,
    FunnelGroup,
    Incident,
    OutcomeGroup,
    OutcomesReport,
    TimePoint,
    Timeseries,
    parse_breakdowns,
    parse_compensation,
    parse_crosstab,
    parse_outcomes,
    parse_timeseries,
)
from ._analytics.png import png_available, svg_to_png
from ._analytics.svg import (
    MAX_BANDS,
    MAX_BARS,
    MAX_DRAWN_POINTS,
    Chart,
    breakdown_chart,
    combine,
    compensation_chart,
    crosstab_chart,
    outcomes_chart,
    report_charts,
    timeseries_chart,
)
from ._analytics.tables import (
    SUSPECT_MARK,
    breakdown_csv,
    breakdown_table,
    compensation_table,
    crosstab_csv,
    crosstab_table,
    outcomes_table,
    timeseries_summary,
)
from ._analytics.text import xml_text

__all__ = [
    "DIMENSIONS",
    "MAX_BANDS",
    "MAX_BARS",
    "MAX_DRAWN_POINTS",
    "MAX_POINTS",
    "MAX_TEXT",
    "MAX_VALUES",
    "SUSPECT_MARK",
    "Breakdown",
    "BreakdownValue",
    "Budget",
    "Chart",
    "ChartLabels",
    "CompensationReport",
    "Cost",
    "CrossTab",
    "CrossTabRow",
    "Funnel",
    "FunnelGroup",
    "Incident",
    "InvalidReport",
    "OutcomeGroup",
    "OutcomesReport",
    "PngUnavailable",
    "TimePoint",
    "Timeseries",
    "breakdown_chart",
    "breakdown_csv",
    "breakdown_table",
    "combine",
    "compensation_chart",
    "compensation_table",
    "crosstab_chart",
    "crosstab_csv",
    "crosstab_table",
    "outcomes_chart",
    "outcomes_table",
    "parse_breakdowns",
    "parse_compensation",
    "parse_crosstab",
    "parse_outcomes",
    "parse_timeseries",
    "png_available",
    "report_charts",
    "svg_to_png",
    "timeseries_chart",
    "timeseries_summary",
    "xml_text",
]
