"""Return on compensation: did users hit by a failure come back, by what they were offered?

`outcomes(store, query)` answers ``GET /v1/reports/outcomes`` (docs/analytics.md,
"Return on compensation"). The users are those with a failed call in ``[since, until)``
that the detector's own rule counts as a failure we owe for
(`errdiscount_sdk.detection.counts_as_failure`: network failures, 5xx, unreadable
answers; never business refusals or client statuses). Each user falls in one group:

- ``redeemed``: a voucher issued to them within ``within_days`` of their first such
  failure was redeemed (and not reversed);
- ``offered_not_redeemed``: such a voucher was issued, none redeemed;
- ``not_offered``: no voucher in that time (an incident nobody compensated).

A user *converted* if an outcome event named ``name`` of theirs falls within
``within_days`` after the anchor: the first redemption for ``redeemed``, the first
failure otherwise. Each group's rate comes with a Wilson score interval (95 %).
Observational, not causal: the groups select themselves.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from errdiscount_sdk.detection import DEFAULT_CLIENT_STATUSES, counts_as_failure
from server_stub.domain._render import rfc3339
from server_stub.store import Store, VoucherRow

from ._funnel import check_era
from ._window import InvalidReportQuery, Window, check_names, parse_int

__all__ = [
    "GROUPS",
    "NOTE",
    "Z_95",
    "OutcomesQuery",
    "outcomes",
    "wilson_interval",
]

GROUPS: tuple[str, ...] = ("redeemed", "offered_not_redeemed", "not_offered")
#: the standard normal quantile of 0.975: a two-sided 95 % interval
Z_95: Final = 1.959963984540054
MAX_NAME = 128
_PARAMS = frozenset({"since", "until", "name", "within_days"})
NOTE: Final = (
    "Observational, not causal: users who redeem a voucher differ from those who do not"
    " (they were more engaged to begin with), and who was offered one depends on the"
    " incident; compare the groups as a description, not as the effect of compensating."
)


@attrs.frozen
class OutcomesQuery:
    """``GET /v1/reports/outcomes``'s parsed query (``window`` is that of the failures)."""

    window: Window
    name: str = "purchase"
    within_days: int = 30
    #: the statuses that never count as our failure (the detector's default)
    client_statuses: frozenset[int] = DEFAULT_CLIENT_STATUSES

    @classmethod
    def from_params(cls, params: Mapping[str, str], now: datetime) -> OutcomesQuery:
        """Parse single-valued query parameters.

        Raises:
            InvalidReportQuery: an unknown name, a bad value or window.
        """
        check_names(params, _PARAMS)
        window = check_era(Window.from_params(params, now))
        name = params.get("name", "purchase")
        if len(name) > MAX_NAME:
            raise InvalidReportQuery(f"name is at most {MAX_NAME} characters.")
        within = parse_int(params, "within_days", low=1, high=365, default=30)
        return cls(window=window, name=name, within_days=within)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (no continuity correction).

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``: unlike the normal
    approximation it stays within [0, 1] and is sound for small n and p near 0 or 1.

    Raises:
        ValueError: ``trials`` < 1 or ``successes`` outside 0..trials.
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials and trials >= 1")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # At 0 and n successes the bounds are exactly 0 and 1; floating point can miss by 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def _first_failures(store: Store, query: OutcomesQuery) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for row in store.failure_rows(query.window.since, query.window.until):
        if not counts_as_failure(row.category, row.status, client_statuses=query.client_statuses):
            continue
        known = first.get(row.user_id)
        if known is None or row.first < known:
            first[row.user_id] = row.first
    return first


def _assign(
    failed_at: datetime, vouchers: list[VoucherRow], within: timedelta
) -> tuple[str, datetime]:
    """(group, anchor) of one user from their vouchers (sorted by issue time)."""
    offers = [v for v in vouchers if failed_at <= v.issued_at < failed_at + within]
    redeemed = [
        v.redeemed_at for v in offers if v.redeemed_at is not None and v.reversed_at is None
    ]
    if redeemed:
        return "redeemed", min(redeemed)
    return ("offered_not_redeemed" if offers else "not_offered"), failed_at


def _rounded(value: float) -> float:
    return round(value, 6)


def _group_json(group: str, users: int, converted: int) -> dict[str, Any]:
    if users == 0:
        rate = low = high = None
    else:
        interval = wilson_interval(converted, users)
        rate, low, high = (_rounded(converted / users), *map(_rounded, interval))
    return {
        "group": group,
        "users": users,
        "converted": converted,
        "rate": rate,
        "ci_low": low,
        "ci_high": high,
    }


def outcomes(store: Store, query: OutcomesQuery) -> dict[str, Any]:
    """The outcome comparison (the JSON of ``GET /v1/reports/outcomes``)."""
    within = timedelta(days=query.within_days)
    first = _first_failures(store, query)
    vouchers: dict[str, list[VoucherRow]] = {}
    if first:
        for row in store.voucher_rows(query.window.since, query.window.until + within):
            if row.subject in first:
                vouchers.setdefault(row.subject, []).append(row)
    anchors = {
        user: _assign(failed_at, vouchers.get(user, []), within)
        for user, failed_at in first.items()
    }
    times: dict[str, list[datetime]] = {}
    if anchors:
        latest = max(anchor for _, anchor in anchors.values()) + within
        for user, ts in store.outcome_times(query.name, query.window.since, latest):
            if user in anchors:
                times.setdefault(user, []).append(ts)  # sorted by the store
    counts = {group: [0, 0] for group in GROUPS}
    for user, (group, anchor) in anchors.items():
        seen = times.get(user, [])
        index = bisect.bisect_left(seen, anchor)
        converted = index < len(seen) and seen[index] < anchor + within
        counts[group][0] += 1
        counts[group][1] += int(converted)
    return {
        "since": rfc3339(query.window.since),
        "until": rfc3339(query.window.until),
        "name": query.name,
        "within_days": query.within_days,
        "confidence": 0.95,
        "method": "wilson",
        "groups": [_group_json(group, *counts[group]) for group in GROUPS],
        "note": NOTE,
    }
