"""Plain-text tables of the reports for a terminal, and CSV for spreadsheets.

Suspects are marked twice, so neither colour nor position is needed to see them: a ``*``
in the first column and ``◀ suspect`` at the end of the row. Every value goes through
`terminal_text` (a value holding an ANSI escape is shown, not obeyed) and is cut to a
bounded width; CSV cells go through `csv_cell`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence

from .labels import ChartLabels
from .model import Breakdown, CompensationReport, CrossTab, OutcomesReport, Timeseries
from .text import (
    csv_cell,
    display_width,
    fit,
    format_count,
    format_lift,
    format_percent,
    terminal_text,
)

__all__ = [
    "SUSPECT_MARK",
    "breakdown_csv",
    "breakdown_table",
    "compensation_table",
    "crosstab_csv",
    "crosstab_table",
    "outcomes_table",
    "timeseries_summary",
]

SUSPECT_MARK = "\u25c0 suspect"
_VALUE_COLUMNS = 32
_CSV_HEADER = (
    "dimension",
    "value",
    "failures",
    "failure_share",
    "calls",
    "call_share",
    "lift",
    "suspect",
    "first_seen",
    "last_seen",
)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [
        max([display_width(h), *(display_width(row[i]) for row in rows)])
        for i, h in enumerate(headers)
    ]
    shown = [i for i, width in enumerate(widths) if width]  # an all-empty column is left out
    lines = [
        "  ".join(_pad(line[i], widths[i], right[i]) for i in shown).rstrip()
        for line in (headers, *rows)
    ]
    lines.insert(1, "  ".join("-" * widths[i] for i in shown))
    return "\n".join(lines)


def _shown(value: str | None, labels: ChartLabels) -> str:
    return fit(terminal_text(labels.unknown if value is None else value), _VALUE_COLUMNS)


def _when(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _window(since: dt.datetime, until: dt.datetime) -> str:
    return f"{_when(since)} .. {_when(until)} UTC"


def breakdown_table(report: Breakdown, labels: ChartLabels | None = None) -> str:
    """One dimension's values: failures, shares, calls, lift, seen; suspects marked."""
    labels = labels or ChartLabels()
    title = labels.breakdown_title.format(dimension=labels.dimension(report.dimension))
    head = f"{title} ({_window(report.since, report.until)}): " + labels.breakdown_desc.format(
        failures=format_count(report.total_failures), calls=format_count(report.total_calls)
    )
    if not report.values:
        return f"{head}\n  {labels.no_data}"
    headers = (
        "",
        "value",
        "failures",
        "fail%",
        "calls",
        "call%",
        "lift",
        "first seen",
        "last seen",
        "",
    )
    rows = [
        (
            "*" if v.suspect else "",
            _shown(v.value, labels),
            format_count(v.failures),
            format_percent(v.failure_share),
            format_count(v.calls),
            format_percent(v.call_share),
            format_lift(v.lift),
            _when(v.first_seen),
            _when(v.last_seen),
            SUSPECT_MARK if v.suspect else "",
        )
        for v in report.values
    ]
    if report.other_values:
        rows.append(
            (
                "",
                labels.other.format(values=report.other_values),
                format_count(report.other_failures),
                "",
                format_count(report.other_calls),
                "",
                "",
                "",
                "",
                "",
            )
        )
    right = (False, False, True, True, True, True, True, False, False, False)
    return f"{head}\n{_grid(headers, rows, right)}"


def crosstab_table(report: CrossTab, labels: ChartLabels | None = None) -> str:
    """Failures of ``dimension`` by ``by`` as a grid of failure shares; suspect cells ``*``."""
    labels = labels or ChartLabels()
    title = labels.crosstab_title.format(
        dimension=labels.dimension(report.dimension), by=labels.dimension(report.by)
    )
    head = f"{title} ({_window(report.since, report.until)})"
    columns: list[str | None] = []
    for row in report.rows:
        for cell in row.columns:
            if cell.value not in columns:
                columns.append(cell.value)
    if not report.rows:
        return f"{head}\n  {labels.no_data}"
    headers = ["value", "failures", *(_shown(c, labels)[:16] for c in columns)]
    rows = []
    for row in report.rows:
        cells = {item.value: item for item in row.columns}
        line = [_shown(row.value, labels), format_count(row.failures)]
        for column in columns:
            found = cells.get(column)
            if found is None:
                line.append("")
            else:
                line.append(format_percent(found.failure_share) + ("*" if found.suspect else ""))
        rows.append(line)
    note = "* = suspect (failure share, lift and failures above the thresholds)"
    return f"{head}\n{_grid(headers, rows, [False] + [True] * (len(headers) - 1))}\n{note}"


def timeseries_summary(report: Timeseries, labels: ChartLabels | None = None) -> str:
    """The window's totals, its worst step and the incidents (one line each)."""
    labels = labels or ChartLabels()
    failures = sum(p.failures for p in report.points)
    calls = sum(p.calls for p in report.points)
    lines = [
        f"{labels.timeseries_title} ({_window(report.since, report.until)}, per {report.step}): "
        + f"{format_count(failures)} failures in {format_count(calls)} calls"
    ]
    worst = max(report.points, key=lambda p: p.failures, default=None)
    if worst is not None and worst.failures:
        lines.append(
            f"  worst {report.step}: {_when(worst.start)} ({format_count(worst.failures)} failures)"
        )
    for incident in report.incidents[:20]:
        end = _when(incident.end) if incident.end else labels.open_incident
        lines.append(
            f"  {labels.incident} {terminal_text(fit(incident.id, 40))}"
            f" {terminal_text(fit(incident.endpoint or '*', 40))}: {_when(incident.start)} .. {end}"
            + (f", {terminal_text(fit(incident.severity, 20))}" if incident.severity else "")
        )
    if len(report.incidents) > 20:
        lines.append(f"  ... and {len(report.incidents) - 20} more incidents")
    return "\n".join(lines)


def compensation_table(report: CompensationReport, labels: ChartLabels | None = None) -> str:
    """The funnel per group (and in total), the cost per unit, the budgets."""
    labels = labels or ChartLabels()
    head = f"{labels.funnel_title} ({_window(report.since, report.until)}, by {report.group_by})"
    headers = (
        report.group_by,
        labels.issued,
        labels.shown,
        labels.redeemed,
        labels.reversed,
        "redeemed%",
    )
    rows = []
    for group in (*report.groups, None):
        funnel = report.totals if group is None else group.funnel
        name = "total" if group is None else _shown(group.key, labels)
        rate = funnel.redeemed / funnel.issued if funnel.issued else None
        rows.append(
            (
                name,
                format_count(funnel.issued),
                format_count(funnel.shown),
                format_count(funnel.redeemed),
                format_count(funnel.reversed),
                format_percent(rate),
            )
        )
    lines = [head, _grid(headers, rows, (False, True, True, True, True, True))]
    for cost in report.totals.cost:
        lines.append(
            "  "
            + labels.cost.format(
                unit=terminal_text(fit(cost.unit, 16)),
                issued=format_count(cost.issued),
                redeemed=format_count(cost.redeemed),
            )
        )
    for budget in report.budgets:
        lines.append(
            "  "
            + labels.budget.format(
                kind=terminal_text(fit(budget.kind, 16)),
                campaign=terminal_text(fit(budget.campaign or "", 32)),
                unit=terminal_text(fit(budget.unit, 16)),
                spent=format_count(budget.spent),
                limit=format_count(budget.limit),
                remaining=format_count(budget.remaining),
            ).replace("  ", " ")
        )
    return "\n".join(lines)


def outcomes_table(report: OutcomesReport, labels: ChartLabels | None = None) -> str:
    """Users, conversions, rate and its interval per group, then the note."""
    labels = labels or ChartLabels()
    head = (
        labels.outcomes_title.format(
            name=terminal_text(fit(report.name, 40)), days=report.within_days
        )
        + f" ({_window(report.since, report.until)})"
    )
    confidence = format_percent(report.confidence).replace(".0%", "%")
    headers = ("group", "users", "converted", "rate", f"{confidence} CI")
    rows = [
        (
            terminal_text(fit(labels.group(g.group), 32)),
            format_count(g.users),
            format_count(g.converted),
            format_percent(g.rate),
            "-"
            if g.ci_low is None or g.ci_high is None
            else f"{format_percent(g.ci_low)}..{format_percent(g.ci_high)}",
        )
        for g in report.groups
    ]
    lines = [head, _grid(headers, rows, (False, True, True, True, True))]
    if report.note:
        lines.append(terminal_text(fit(report.note, 400)))
    return "\n".join(lines)


def breakdown_csv(reports: Sequence[Breakdown]) -> str:
    """Every value of every breakdown, one row each (``dimension`` first), with a header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    for report in reports:
        for v in report.values:
            writer.writerow(
                (
                    csv_cell(report.dimension),
                    csv_cell(v.value),
                    v.failures,
                    f"{v.failure_share:.6g}",
                    v.calls,
                    f"{v.call_share:.6g}",
                    "" if v.lift is None else f"{v.lift:.6g}",
                    "true" if v.suspect else "false",
                    "" if v.first_seen is None else v.first_seen.isoformat().replace("+00:00", "Z"),
                    "" if v.last_seen is None else v.last_seen.isoformat().replace("+00:00", "Z"),
                )
            )
    return out.getvalue()


def crosstab_csv(report: CrossTab) -> str:
    """One row per cell: the two values, counts, shares, lift, suspect."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        (
            report.dimension,
            report.by,
            "failures",
            "failure_share",
            "calls",
            "call_share",
            "lift",
            "suspect",
        )
    )
    for row in report.rows:
        for cell in row.columns:
            writer.writerow(
                (
                    csv_cell(row.value),
                    csv_cell(cell.value),
                    cell.failures,
                    f"{cell.failure_share:.6g}",
                    cell.calls,
                    f"{cell.call_share:.6g}",
                    "" if cell.lift is None else f"{cell.lift:.6g}",
                    "true" if cell.suspect else "false",
                )
            )
    return out.getvalue()
