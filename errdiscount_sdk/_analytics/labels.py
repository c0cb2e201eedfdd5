"""The words on the charts and tables, English by default (the dashboard passes its locale's)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["ChartLabels"]


def _frozen(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ChartLabels:
    """Every word the renderers write; ``{placeholders}`` are filled in by them.

    `from_mapping` builds one from a flat ``name → text`` table (a locale catalogue
    section); names it lacks keep their English text.
    """

    breakdown_title: str = "Failures by {dimension}"
    breakdown_desc: str = "{failures} failures in {calls} calls."
    suspect_desc: str = (
        "Suspect: {value} has {failure_share} of the failures but {call_share} of the calls "
        "(lift {lift})."
    )
    no_suspect: str = "No suspect."
    failure_share: str = "share of failures"
    call_share: str = "share of calls"
    suspect: str = "suspect"
    lift: str = "lift {lift}"
    unknown: str = "(unknown)"
    other: str = "other ({values} values)"
    timeseries_title: str = "Failures over time"
    timeseries_desc: str = "{failures} failures in {calls} calls, {points} points ({step})."
    incidents_desc: str = "{count} incidents shaded."
    failures: str = "failures"
    incident: str = "incident"
    open_incident: str = "open"
    funnel_title: str = "Compensation funnel"
    funnel_desc: str = (
        "{issued} vouchers issued, {shown} shown, {redeemed} redeemed, {reversed} reversed."
    )
    issued: str = "issued"
    shown: str = "alert shown"
    redeemed: str = "redeemed"
    reversed: str = "reversed"
    cost: str = "{unit}: {issued} issued, {redeemed} redeemed"
    budget: str = "{kind} {campaign} ({unit}): {spent} of {limit} spent, {remaining} left"
    outcomes_title: str = "Outcome \u201c{name}\u201d within {days} days"
    outcomes_desc: str = "Rate of the outcome per group, with the {confidence} {method} interval."
    rate: str = "{rate} ({converted} of {users}), {confidence} CI {low}\u2013{high}"
    no_users: str = "no users"
    crosstab_title: str = "Failures by {dimension} \u00d7 {by}"
    no_data: str = "No data in this window."
    groups: Mapping[str, str] = attrs.field(
        default=_frozen(
            {
                "redeemed": "redeemed",
                "offered_not_redeemed": "offered, not redeemed",
                "not_offered": "not offered",
            }
        ),
        converter=_frozen,
    )
    dimensions: Mapping[str, str] = attrs.field(
        default=_frozen(
            {
                "platform": "platform",
                "os_version": "OS version",
                "app_version": "app version",
                "sdk_version": "SDK version",
                "endpoint": "endpoint",
                "error_code": "error code",
                "category": "category",
            }
        ),
        converter=_frozen,
    )

    def dimension(self, name: str) -> str:
        return self.dimensions.get(name, name)

    def group(self, name: str) -> str:
        return self.groups.get(name, name)

    @classmethod
    def from_mapping(cls, texts: Mapping[str, str]) -> ChartLabels:
        """Labels from ``name → text`` (``group.<name>``, ``dimension.<name>``: the tables)."""
        fields: dict[str, Any] = {}
        simple = {a.name for a in attrs.fields(cls)} - {"groups", "dimensions"}
        for name, text in texts.items():
            if name in simple:
                fields[name] = text
        defaults = cls()
        groups = dict(defaults.groups)
        dimensions = dict(defaults.dimensions)
        for name, text in texts.items():
            head, _, tail = name.partition(".")
            if head == "group" and tail:
                groups[tail] = text
            elif head == "dimension" and tail:
                dimensions[tail] = text
        return cls(**fields, groups=groups, dimensions=dimensions)
