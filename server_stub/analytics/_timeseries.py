"""Time series: calls and failures per step, zeros included, with the incidents.

Steps are whole minutes, hours or UTC days from the epoch; the window is widened to
whole steps. Day steps read the daily rollups, shorter ones the minute rollups.
Incidents are those of the detection store overlapping the window (with
``endpoint``: those whose scope holds it, or every endpoint).
"""

from __future__ import annotations

from typing import Any

from errdiscount_sdk.detection import ALL_ENDPOINTS
from server_stub.store import IncidentRecord, Store, rfc3339

from ._query import STEPS, TimeseriesQuery
from ._spans import DAY
from ._window import Window

__all__ = ["timeseries"]


def _incident(incident: IncidentRecord) -> dict[str, Any]:
    """``endpoint``: the one endpoint of the scope; None for every endpoint or several."""
    single = len(incident.scope) == 1 and incident.scope[0] != ALL_ENDPOINTS
    return {
        "id": incident.id,
        "endpoint": incident.scope[0] if single else None,
        "start": rfc3339(incident.start),
        "end": None if incident.end is None else rfc3339(incident.end),
        "severity": incident.severity,
    }


def _incidents(store: Store, window: Window, endpoint: str | None) -> list[dict[str, Any]]:
    found = store.incidents_overlapping(window.since, window.until)
    return [
        _incident(incident)
        for incident in found
        if endpoint is None or endpoint in incident.scope or ALL_ENDPOINTS in incident.scope
    ]


def timeseries(store: Store, query: TimeseriesQuery) -> dict[str, Any]:
    """The time-series report (docs/analytics.md)."""
    step = STEPS[query.step]
    window = query.window.aligned(step)
    buckets = store.rollup_series(
        grain="day" if step == DAY else "minute",
        since=window.since,
        until=window.until,
        step=step,
        endpoint=query.endpoint,
        error_code=query.error_code,
    )
    by_start = {bucket.start: bucket for bucket in buckets}
    points = []
    moment = window.since
    while moment < window.until:
        bucket = by_start.get(moment)
        points.append(
            {
                "start": rfc3339(moment),
                "calls": 0 if bucket is None else bucket.calls,
                "failures": 0 if bucket is None else bucket.failures,
            }
        )
        moment += step
    return {
        "since": rfc3339(window.since),
        "until": rfc3339(window.until),
        "step": query.step,
        "points": points,
        "incidents": _incidents(store, window, query.endpoint),
    }
