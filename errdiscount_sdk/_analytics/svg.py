"""SVG charts of the reports: pure functions from checked report values to markup.

Every chart is a self-contained ``<svg role="img">`` with a ``<title>`` and a ``<desc>``
that says in words what the chart shows (the suspect and its lift, the funnel's counts),
text labels on every bar, and no meaning carried by colour alone: failure shares are
solid bars, call shares outlined ones, a suspect is written out (``◀ suspect``) and
outlined in black, incident bands are labelled. No script, no ``style`` (a strict CSP
forbids inline styles; presentation attributes only), no external reference, no ``id``
but the title's and description's (prefixed, so several charts share a page). Every text
goes through `xml_text`. Sizes are bounded: at most `MAX_BARS` bars (the rest folded into
"other"), `MAX_DRAWN_POINTS` points (consecutive steps summed), `MAX_BANDS` bands.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import attrs

from .labels import ChartLabels
from .model import (
    Breakdown,
    BreakdownValue,
    CompensationReport,
    CrossTab,
    OutcomesReport,
    TimePoint,
    Timeseries,
)
from .text import fit, format_count, format_lift, format_percent, xml_text

__all__ = [
    "MAX_BANDS",
    "MAX_BARS",
    "MAX_DRAWN_POINTS",
    "Chart",
    "breakdown_chart",
    "combine",
    "compensation_chart",
    "crosstab_chart",
    "outcomes_chart",
    "report_charts",
    "timeseries_chart",
]

MAX_BARS = 20
MAX_DRAWN_POINTS = 400
MAX_BANDS = 50
_MAX_CROSS = 10
WIDTH = 720
_FONT = "system-ui, sans-serif"
_INK = "#1f2328"
_MUTED = "#57606a"
_FAILURE = "#2e6da4"
_SUSPECT = "#b03a2e"
_SUSPECT_BACKGROUND = "#fbeae8"
_BAND = "#e3b341"
_LABEL_COLUMNS = 26
_ID = re.compile(r"[^A-Za-z0-9_-]")


@attrs.frozen
class Chart:
    """One chart: its title and description (plain text) and its drawing (markup)."""

    title: str
    desc: str
    width: int
    height: int
    body: str = attrs.field(repr=False)

    def svg(self, id_prefix: str = "chart") -> str:
        """The chart as a standalone ``<svg>`` element (also a valid SVG document)."""
        prefix = _ID.sub("", id_prefix)[:40] or "chart"
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'aria-labelledby="{prefix}-title {prefix}-desc" font-family="{_FONT}" '
            f'font-size="12" fill="{_INK}">'
            f'<title id="{prefix}-title">{xml_text(self.title)}</title>'
            f'<desc id="{prefix}-desc">{xml_text(self.desc)}</desc>'
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>'
            f"{self.body}</svg>"
        )


def combine(charts: Sequence[Chart], *, title: str, desc: str = "") -> str:
    """Several charts stacked in one SVG document (``errdiscount report --svg``)."""
    parts, y = [], 0
    width = max((c.width for c in charts), default=WIDTH)
    for index, chart in enumerate(charts):
        inner = chart.svg(f"chart{index}")
        parts.append(inner.replace("<svg ", f'<svg x="0" y="{y}" ', 1))
        y += chart.height + 16
    height = max(y - 16, 40)
    body = "".join(parts) or _text(16, 24, "-")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="report-title report-desc" '
        f'font-family="{_FONT}">'
        f'<title id="report-title">{xml_text(title)}</title>'
        f'<desc id="report-desc">{xml_text(desc or title)}</desc>{body}</svg>\n'
    )


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    weight: str | None = None,
    size: int | None = None,
    fill: str | None = None,
) -> str:
    attributes = f'x="{_num(x)}" y="{_num(y)}"'
    if anchor != "start":
        attributes += f' text-anchor="{anchor}"'
    if weight:
        attributes += f' font-weight="{weight}"'
    if size:
        attributes += f' font-size="{size}"'
    if fill:
        attributes += f' fill="{fill}"'
    return f"<text {attributes}>{xml_text(content)}</text>"


def _rect(x: float, y: float, w: float, h: float, **extra: str) -> str:
    more = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in extra.items())
    return f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" height="{_num(h)}"{more}/>'


def _line(x1: float, y1: float, x2: float, y2: float, **extra: str) -> str:
    more = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in extra.items())
    return f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"{more}/>'


def _label(value: str | None, labels: ChartLabels) -> str:
    return labels.unknown if value is None else value


def _empty(title: str, desc: str, labels: ChartLabels) -> Chart:
    body = _text(16, 44, labels.no_data, fill=_MUTED)
    return Chart(title, f"{desc} {labels.no_data}".strip(), WIDTH, 64, _heading(title) + body)


def _heading(title: str) -> str:
    return _text(16, 22, fit(title, 90), weight="bold", size=14)


def _legend(y: float, labels: ChartLabels) -> str:
    return (
        _rect(16, y - 9, 12, 10, fill=_FAILURE)
        + _text(32, y, labels.failure_share)
        + _rect(176, y - 9, 12, 10, fill="none", stroke=_INK)
        + _text(192, y, labels.call_share)
    )


def breakdown_chart(report: Breakdown, labels: ChartLabels | None = None) -> Chart:
    """Failure share against call share for each value; suspects outlined and labelled."""
    labels = labels or ChartLabels()
    dimension = labels.dimension(report.dimension)
    title = labels.breakdown_title.format(dimension=dimension)
    desc = labels.breakdown_desc.format(
        failures=format_count(report.total_failures), calls=format_count(report.total_calls)
    )
    suspects = report.suspects
    desc_parts = [desc]
    for value in suspects:
        desc_parts.append(_suspect_sentence(value, labels))
    if not suspects:
        desc_parts.append(labels.no_suspect)
    if not report.values:
        return _empty(title, " ".join(desc_parts), labels)
    shown = report.values[:MAX_BARS]
    folded = report.values[MAX_BARS:]
    other_failures = report.other_failures + sum(v.failures for v in folded)
    other_calls = report.other_calls + sum(v.calls for v in folded)
    other_values = report.other_values + len(folded)
    row = 38
    top = 56
    left, span = 200, 340
    rows = len(shown) + (1 if other_values else 0)
    height = top + rows * row + 8
    parts = [_heading(title), _legend(42, labels)]
    for index, value in enumerate(shown):
        y = top + index * row
        parts.append(_bar_row(y, left, span, value, labels))
    if other_values:
        y = top + len(shown) * row
        share_f = other_failures / report.total_failures if report.total_failures else 0.0
        share_c = other_calls / report.total_calls if report.total_calls else 0.0
        parts.append(_text(16, y + 16, labels.other.format(values=other_values), fill=_MUTED))
        parts.append(_rect(left, y + 6, share_f * span, 12, fill=_MUTED))
        parts.append(_text(left + share_f * span + 4, y + 16, format_percent(share_f)))
        parts.append(_rect(left, y + 21, share_c * span, 9, fill="none", stroke=_MUTED))
        parts.append(_text(left + share_c * span + 4, y + 30, format_percent(share_c), size=10))
    return Chart(title, " ".join(desc_parts), WIDTH, height, "".join(parts))


def _suspect_sentence(value: BreakdownValue, labels: ChartLabels) -> str:
    return labels.suspect_desc.format(
        value=_label(value.value, labels),
        failure_share=format_percent(value.failure_share),
        call_share=format_percent(value.call_share),
        lift=format_lift(value.lift),
    )


def _bar_row(y: float, left: float, span: float, value: BreakdownValue, labels: ChartLabels) -> str:
    name = fit(_label(value.value, labels), _LABEL_COLUMNS)
    failure_w = value.failure_share * span
    call_w = value.call_share * span
    parts = []
    if value.suspect:
        parts.append(
            f'<g data-suspect="true">{_rect(8, y + 1, WIDTH - 16, 34, fill=_SUSPECT_BACKGROUND)}'
        )
    else:
        parts.append("<g>")
    parts.append(f"<title>{xml_text(_label(value.value, labels))}</title>")
    parts.append(_text(16, y + 22, name, weight="bold" if value.suspect else None))
    colour = _SUSPECT if value.suspect else _FAILURE
    stroke = {"stroke": _INK, "stroke_width": "2"} if value.suspect else {}
    parts.append(_rect(left, y + 6, failure_w, 12, fill=colour, **stroke))
    parts.append(_text(left + failure_w + 4, y + 16, format_percent(value.failure_share)))
    parts.append(_rect(left, y + 21, call_w, 9, fill="none", stroke=_INK))
    parts.append(_text(left + call_w + 4, y + 30, format_percent(value.call_share), size=10))
    lift = labels.lift.format(lift=format_lift(value.lift))
    if value.suspect:
        parts.append(
            _text(
                WIDTH - 16,
                y + 22,
                f"\u25c0 {labels.suspect} \u00b7 {lift}",
                anchor="end",
                weight="bold",
                fill=_SUSPECT,
            )
        )
    else:
        parts.append(_text(WIDTH - 16, y + 22, lift, anchor="end", fill=_MUTED))
    parts.append("</g>")
    return "".join(parts)


def _downsample(points: Sequence[TimePoint]) -> tuple[tuple[TimePoint, ...], int]:
    """At most `MAX_DRAWN_POINTS` points: consecutive steps summed; and how many per point."""
    if len(points) <= MAX_DRAWN_POINTS:
        return tuple(points), 1
    per = -(-len(points) // MAX_DRAWN_POINTS)
    merged = []
    for start in range(0, len(points), per):
        chunk = points[start : start + per]
        merged.append(
            TimePoint(
                start=chunk[0].start,
                calls=sum(p.calls for p in chunk),
                failures=sum(p.failures for p in chunk),
            )
        )
    return tuple(merged), per


def _when(moment: dt.datetime, step: str) -> str:
    return moment.strftime("%Y-%m-%d" if step == "day" else "%m-%d %H:%M")


def timeseries_chart(report: Timeseries, labels: ChartLabels | None = None) -> Chart:
    """Failures per step as an area, incidents as labelled shaded bands."""
    labels = labels or ChartLabels()
    title = labels.timeseries_title
    failures = sum(p.failures for p in report.points)
    calls = sum(p.calls for p in report.points)
    desc = labels.timeseries_desc.format(
        failures=format_count(failures),
        calls=format_count(calls),
        points=len(report.points),
        step=report.step,
    )
    if report.incidents:
        desc += " " + labels.incidents_desc.format(count=len(report.incidents))
    if not report.points:
        return _empty(title, desc, labels)
    points, per = _downsample(report.points)
    step = report.step_length * per
    first = points[0].start
    end = points[-1].start + step
    span_seconds = max((end - first).total_seconds(), 1.0)
    left, right, top, bottom = 64.0, WIDTH - 16.0, 40.0, 220.0
    height = 256

    def x_of(moment: dt.datetime) -> float:
        ratio = (moment - first).total_seconds() / span_seconds
        return left + min(max(ratio, 0.0), 1.0) * (right - left)

    peak = max((p.failures for p in points), default=0) or 1

    def y_of(count: int) -> float:
        return bottom - count / peak * (bottom - top)

    parts = [_heading(title)]
    for index, incident in enumerate(report.incidents[:MAX_BANDS]):
        x1 = x_of(incident.start)
        x2 = x_of(incident.end or end)
        name = incident.endpoint or ""
        caption = labels.incident
        if incident.severity:
            caption += f" ({incident.severity})"
        if incident.end is None:
            caption += f", {labels.open_incident}"
        parts.append(
            '<g data-incident="true">'
            f"<title>{xml_text(' '.join(s for s in (caption, name) if s))}</title>"
            + _rect(x1, top, max(x2 - x1, 2), bottom - top, fill=_BAND, fill_opacity="0.3")
            + _line(x1, top, x1, bottom, stroke=_BAND, stroke_dasharray="4 3")
            + (
                _text(x1 + 3, top + 12 + (index % 3) * 12, fit(caption, 24), size=10)
                if x1 < right - 130
                else _text(
                    right - 3, top + 12 + (index % 3) * 12, fit(caption, 24), anchor="end", size=10
                )
            )
            + "</g>"
        )
    for tick in (0, peak // 2, peak) if peak > 1 else (0, peak):
        y = y_of(tick)
        parts.append(_line(left, y, right, y, stroke="#d0d7de"))
        parts.append(_text(left - 6, y + 4, format_count(tick), anchor="end", size=10))
    outline = " ".join(f"{_num(x_of(p.start + step / 2))},{_num(y_of(p.failures))}" for p in points)
    area = f"{_num(x_of(points[0].start + step / 2))},{_num(bottom)} {outline} " + (
        f"{_num(x_of(points[-1].start + step / 2))},{_num(bottom)}"
    )
    parts.append(f'<polygon points="{area}" fill="{_FAILURE}" fill-opacity="0.25"/>')
    parts.append(f'<polyline points="{outline}" fill="none" stroke="{_FAILURE}" stroke-width="2"/>')
    parts.append(_line(left, bottom, right, bottom, stroke=_INK))
    middle = points[len(points) // 2].start
    parts.append(_text(left, bottom + 16, _when(first, report.step), size=10))
    parts.append(
        _text(x_of(middle), bottom + 16, _when(middle, report.step), anchor="middle", size=10)
    )
    parts.append(
        _text(right, bottom + 16, _when(points[-1].start, report.step), anchor="end", size=10)
    )
    parts.append(_text(left, bottom + 30, labels.failures, size=10, fill=_MUTED))
    return Chart(title, desc, WIDTH, height, "".join(parts))


def compensation_chart(report: CompensationReport, labels: ChartLabels | None = None) -> Chart:
    """The funnel issued → shown → redeemed → reversed, the cost per unit, the budgets."""
    labels = labels or ChartLabels()
    totals = report.totals
    title = labels.funnel_title
    desc = labels.funnel_desc.format(
        issued=format_count(totals.issued),
        shown=format_count(totals.shown),
        redeemed=format_count(totals.redeemed),
        reversed=format_count(totals.reversed),
    )
    costs = [
        labels.cost.format(
            unit=cost.unit, issued=format_count(cost.issued), redeemed=format_count(cost.redeemed)
        )
        for cost in totals.cost[:MAX_BARS]
    ]
    budgets = [
        (
            budget,
            labels.budget.format(
                kind=budget.kind,
                campaign=budget.campaign or "",
                unit=budget.unit,
                spent=format_count(budget.spent),
                limit=format_count(budget.limit),
                remaining=format_count(budget.remaining),
            ).replace("  ", " "),
        )
        for budget in report.budgets[:MAX_BARS]
    ]
    desc = " ".join([desc, *costs, *(text for _, text in budgets)])
    steps = (
        (labels.issued, totals.issued),
        (labels.shown, totals.shown),
        (labels.redeemed, totals.redeemed),
        (labels.reversed, totals.reversed),
    )
    left, span, row, top = 200.0, 400.0, 30, 40
    base = totals.issued or max((count for _, count in steps), default=0) or 1
    parts = [_heading(title)]
    for index, (name, count) in enumerate(steps):
        y = top + index * row
        width = min(count / base, 1.0) * span
        share = "" if index == 0 or not totals.issued else f" ({format_percent(count / base)})"
        parts.append(_text(16, y + 16, name))
        parts.append(_rect(left, y + 4, width, 16, fill=_FAILURE if index < 3 else _SUSPECT))
        parts.append(_text(left + width + 6, y + 16, f"{format_count(count)}{share}"))
    y = top + len(steps) * row + 12
    for text in costs:
        parts.append(_text(16, y, fit(text, 110)))
        y += 18
    for budget, text in budgets:
        ratio = min(budget.spent / budget.limit, 1.0) if budget.limit > 0 else 1.0
        parts.append(_text(16, y + 2, fit(text, 110)))
        parts.append(_rect(16, y + 8, span, 6, fill="none", stroke=_INK))
        parts.append(_rect(16, y + 8, ratio * span, 6, fill=_SUSPECT if ratio >= 0.9 else _FAILURE))
        y += 30
    return Chart(title, desc, WIDTH, int(y + 4), "".join(parts))


def outcomes_chart(report: OutcomesReport, labels: ChartLabels | None = None) -> Chart:
    """The outcome rate per group, with its confidence interval as a whisker."""
    labels = labels or ChartLabels()
    title = labels.outcomes_title.format(name=report.name, days=report.within_days)
    confidence = format_percent(report.confidence).replace(".0%", "%")
    desc_parts = [labels.outcomes_desc.format(confidence=confidence, method=report.method)]
    left, span, row, top = 220.0, 300.0, 34, 44
    parts = [_heading(title)]
    groups = report.groups[:MAX_BARS]
    for index, group in enumerate(groups):
        y = top + index * row
        name = labels.group(group.group)
        parts.append(_text(16, y + 16, fit(name, 30)))
        if group.rate is None:
            caption = labels.no_users
        else:
            caption = labels.rate.format(
                rate=format_percent(group.rate),
                converted=format_count(group.converted),
                users=format_count(group.users),
                confidence=confidence,
                low=format_percent(group.ci_low),
                high=format_percent(group.ci_high),
            )
            parts.append(_rect(left, y + 4, group.rate * span, 16, fill=_FAILURE))
            if group.ci_low is not None and group.ci_high is not None:
                x1, x2 = left + group.ci_low * span, left + group.ci_high * span
                parts.append(_line(x1, y + 12, x2, y + 12, stroke=_INK, stroke_width="2"))
                parts.append(_line(x1, y + 6, x1, y + 18, stroke=_INK, stroke_width="2"))
                parts.append(_line(x2, y + 6, x2, y + 18, stroke=_INK, stroke_width="2"))
        desc_parts.append(f"{name}: {caption}.")
        parts.append(_text(16, y + 30, fit(caption, 110), size=10, fill=_MUTED))
    y = top + len(groups) * row + 8
    if not groups:
        parts.append(_text(16, y + 8, labels.no_data, fill=_MUTED))
        y += 20
    for line in _wrap(report.note, 110)[:4]:
        parts.append(_text(16, y + 10, line, size=11, fill=_MUTED))
        y += 16
    if report.note:
        desc_parts.append(report.note)
    return Chart(title, " ".join(desc_parts), WIDTH, int(y + 8), "".join(parts))


def crosstab_chart(report: CrossTab, labels: ChartLabels | None = None) -> Chart:
    """A grid of failure shares (``dimension`` rows, ``by`` columns); suspect cells marked."""
    labels = labels or ChartLabels()
    title = labels.crosstab_title.format(
        dimension=labels.dimension(report.dimension), by=labels.dimension(report.by)
    )
    desc_parts = [
        labels.breakdown_desc.format(
            failures=format_count(report.total_failures), calls=format_count(report.total_calls)
        )
    ]
    rows = report.rows[:_MAX_CROSS]
    columns: list[str | None] = []
    for row in rows:
        for cell in row.columns:
            if cell.value not in columns and len(columns) < _MAX_CROSS:
                columns.append(cell.value)
    if not rows:
        return _empty(title, desc_parts[0], labels)
    cell_w, cell_h, left, top = 52.0, 24.0, 160.0, 64.0
    width = max(WIDTH, int(left + cell_w * len(columns) + 16))
    parts = [_heading(title)]
    for index, column in enumerate(columns):
        parts.append(
            _text(left + index * cell_w + cell_w / 2, top - 8, fit(_label(column, labels), 7),
                  anchor="middle", size=10)
        )  # fmt: skip
    for r, row in enumerate(rows):
        y = top + r * cell_h
        parts.append(_text(16, y + 16, fit(_label(row.value, labels), 20)))
        cells = {item.value: item for item in row.columns}
        for c, column in enumerate(columns):
            found = cells.get(column)
            if found is None:
                continue
            cell = found
            x = left + c * cell_w
            strength = min(cell.failure_share * 2, 1.0)
            extra = {"stroke": _INK, "stroke_width": "2"} if cell.suspect else {"stroke": "#d0d7de"}
            parts.append(
                _rect(x + 1, y + 1, cell_w - 2, cell_h - 2, fill=_FAILURE,
                      fill_opacity=f"{0.08 + 0.6 * strength:.2f}", **extra)
            )  # fmt: skip
            mark = "*" if cell.suspect else ""
            parts.append(
                _text(x + cell_w / 2, y + 16, format_percent(cell.failure_share) + mark,
                      anchor="middle", size=10, weight="bold" if cell.suspect else None)
            )  # fmt: skip
            if cell.suspect:
                desc_parts.append(
                    _suspect_sentence(
                        attrs.evolve(
                            cell,
                            value=f"{_label(row.value, labels)} / {_label(cell.value, labels)}",
                        ),
                        labels,
                    )
                )
    height = int(top + len(rows) * cell_h + 12)
    return Chart(title, " ".join(desc_parts), width, height, "".join(parts))


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    words = [word[i : i + width] for word in text.split() for i in range(0, len(word), width)]
    for word in words:
        candidate = f"{current} {word}".strip()
        if len(candidate) > width and current:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(fit(current, width))
    return lines


def report_charts(
    breakdowns: Sequence[Breakdown] = (),
    *,
    timeseries: Timeseries | None = None,
    compensation: CompensationReport | None = None,
    outcomes: OutcomesReport | None = None,
    crosstab: CrossTab | None = None,
    labels: ChartLabels | None = None,
) -> list[Chart]:
    """The charts of whatever reports are given, in the dashboard's order."""
    charts: list[Chart] = []
    if timeseries is not None:
        charts.append(timeseries_chart(timeseries, labels))
    charts.extend(breakdown_chart(report, labels) for report in breakdowns)
    if crosstab is not None:
        charts.append(crosstab_chart(crosstab, labels))
    if compensation is not None:
        charts.append(compensation_chart(compensation, labels))
    if outcomes is not None:
        charts.append(outcomes_chart(outcomes, labels))
    return charts
