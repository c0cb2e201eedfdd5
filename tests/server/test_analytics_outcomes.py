"""The outcome comparison's pure parts: the Wilson interval and the query parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server_stub.analytics import (
    CompensationQuery,
    InvalidReportQuery,
    OutcomesQuery,
    wilson_interval,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        # Statistics in Medicine 17:857-872, table II, method 3 (score, no correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # Symmetric around one half; all successes reach 1.
        (1, 2, 0.0945, 0.9055),
        (29, 29, 0.8830, 1.0000),
    ],
)
def test_wilson_matches_the_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    found = wilson_interval(successes, trials)
    assert found == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_is_symmetric_and_within_bounds() -> None:
    for trials in (1, 7, 40, 1000):
        for successes in range(0, trials + 1, max(1, trials // 7)):
            low, high = wilson_interval(successes, trials)
            assert 0 <= low <= successes / trials <= high <= 1
            mirror = wilson_interval(trials - successes, trials)
            assert mirror == (pytest.approx(1 - high), pytest.approx(1 - low))


@pytest.mark.parametrize(("successes", "trials"), [(0, 0), (3, 2), (-1, 4)])
def test_wilson_refuses_impossible_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(successes, trials)


def test_outcome_query_defaults_and_values() -> None:
    query = OutcomesQuery.from_params({}, NOW)
    assert (query.window.since, query.window.until) == (NOW - timedelta(days=7), NOW)
    assert (query.name, query.within_days) == ("purchase", 30)
    query = OutcomesQuery.from_params(
        {"since": "30d", "name": "renewal", "within_days": "365"}, NOW
    )
    assert (query.window.since, query.name, query.within_days) == (
        NOW - timedelta(days=30),
        "renewal",
        365,
    )


def test_compensation_query_defaults_and_period_only_with_period() -> None:
    query = CompensationQuery.from_params({"period": "month"}, NOW)
    assert (query.group_by, query.period) == ("period", "month")
    assert CompensationQuery.from_params({"group_by": "segment"}, NOW).group_by == "segment"
    with pytest.raises(InvalidReportQuery, match="period"):
        CompensationQuery.from_params({"group_by": "grade", "period": "day"}, NOW)
