"""The report renderers (errdiscount_sdk.reports): SVG, terminal tables, CSV, PNG."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from errdiscount_sdk import ConfigurationError
from errdiscount_sdk import reports as r
from tests.support import report_fixtures as fx

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # ill-formed XML raises here
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def os_versions() -> r.Breakdown:
    (report,) = r.parse_breakdowns(fx.seed_breakdown("os_version"))
    return report


def all_charts(documents: dict[str, Any] | None = None) -> list[r.Chart]:
    docs = documents or {}
    return r.report_charts(
        r.parse_breakdowns(docs.get("breakdown", fx.seed_breakdowns())),
        timeseries=r.parse_timeseries(docs.get("timeseries", fx.timeseries())),
        compensation=r.parse_compensation(docs.get("compensation", fx.compensation())),
        outcomes=r.parse_outcomes(docs.get("outcomes", fx.outcomes())),
        crosstab=r.parse_crosstab(docs.get("crosstab", fx.seed_crosstab())),
    )


def test_every_chart_is_well_formed_accessible_svg_without_script_or_references() -> None:
    charts = all_charts()
    assert len(charts) == 7 + 4
    for index, chart in enumerate(charts):
        root = parse_svg(chart.svg(f"c{index}"))
        assert root.get("role") == "img"
        assert root.get("aria-labelledby") == f"c{index}-title c{index}-desc"
        assert root.find(f"{SVG}title").text == chart.title  # type: ignore[union-attr]
        assert root.find(f"{SVG}desc").text  # type: ignore[union-attr]
        for node in root.iter():
            assert node.tag not in {f"{SVG}script", f"{SVG}style", f"{SVG}image", f"{SVG}use"}
            for name in node.attrib:
                assert not name.startswith("on"), name
                assert name not in {"style", "href", "{http://www.w3.org/1999/xlink}href"}
    document = r.combine(charts, title="errdiscount report")
    root = parse_svg(document)
    assert len(root.findall(f"{SVG}svg")) == len(charts)


def test_the_suspect_and_only_the_suspect_is_highlighted_and_labelled_with_its_lift() -> None:
    chart = r.breakdown_chart(os_versions())
    root = parse_svg(chart.svg())
    suspects = [g for g in root.iter(f"{SVG}g") if g.get("data-suspect") == "true"]
    assert len(suspects) == 1
    words = texts(suspects[0])
    assert "17.2" in words
    assert "\u25c0 suspect \u00b7 lift 8.0\u00d7" in words
    assert "80.0%" in words and "10.0%" in words
    assert "Suspect: 17.2 has 80.0% of the failures but 10.0% of the calls (lift 8.0\u00d7)." in (
        chart.desc
    )
    # the others are drawn, but not as suspects, and "unknown" is named
    assert {"17.1", "14", "(unknown)"} <= set(texts(root))
    for other in ("platform", "app_version"):
        (report,) = r.parse_breakdowns(fx.seed_breakdown(other))
        root = parse_svg(r.breakdown_chart(report).svg())
        assert [g for g in root.iter(f"{SVG}g") if g.get("data-suspect")] == []
        assert "No suspect." in r.breakdown_chart(report).desc


@pytest.mark.parametrize(
    "name", ["breakdown", "timeseries", "compensation", "outcomes", "crosstab"]
)
def test_hostile_labels_are_escaped_and_control_characters_replaced(name: str) -> None:
    documents = {
        "breakdown": fx.seed_breakdowns(),
        "timeseries": fx.timeseries(),
        "compensation": fx.compensation(),
        "outcomes": fx.outcomes(),
        "crosstab": fx.seed_crosstab(),
    }
    documents[name] = fx.hostile(documents[name])
    for chart in all_charts(documents):
        markup = chart.svg()
        parse_svg(markup)
        assert "<script" not in markup
        assert "\x00" not in markup and "\x1b" not in markup and "\u202e" not in markup
    markup = r.combine(all_charts(documents), title=fx.HOSTILE)
    assert "&lt;script&gt;" in markup
    parse_svg(markup.split("\n", 1)[1])


def test_empty_reports_draw_a_no_data_chart() -> None:
    empty = fx.seed_breakdown("os_version") | {"values": [], "total_failures": 0, "total_calls": 0}
    (report,) = r.parse_breakdowns(empty)
    chart = r.breakdown_chart(report)
    root = parse_svg(chart.svg())
    assert "No data in this window." in texts(root)
    series = r.parse_timeseries(fx.timeseries() | {"points": [], "incidents": []})
    assert "No data in this window." in texts(parse_svg(r.timeseries_chart(series).svg()))
    outcomes = r.parse_outcomes(fx.outcomes() | {"groups": []})
    assert "No data in this window." in texts(parse_svg(r.outcomes_chart(outcomes).svg()))
    zero = fx.compensation()
    zero["totals"] = {"issued": 0, "shown": 0, "redeemed": 0, "reversed": 0, "cost": []}
    parse_svg(r.compensation_chart(r.parse_compensation(zero)).svg())
    assert parse_svg(r.combine([], title="nothing").split("\n", 1)[1]) is not None


def test_sizes_are_bounded() -> None:
    document = fx.seed_breakdown("os_version")
    value = document["values"][1]
    document["values"] = [value | {"value": f"v{i}"} for i in range(100)]
    (report,) = r.parse_breakdowns(document)
    root = parse_svg(r.breakdown_chart(report).svg())
    bars = [g for g in root.iter(f"{SVG}g")]
    assert len(bars) == r.MAX_BARS
    assert "other (80 values)" in texts(root)
    series = fx.timeseries()
    point = series["points"][0]
    series["points"] = [point] * 2000
    series["incidents"] = series["incidents"][:1] * 1000
    root = parse_svg(r.timeseries_chart(r.parse_timeseries(series)).svg())
    outline = root.find(f"{SVG}polyline")
    assert outline is not None
    assert len(outline.get("points", "").split()) <= r.MAX_DRAWN_POINTS
    assert len([g for g in root.iter(f"{SVG}g") if g.get("data-incident")]) == r.MAX_BANDS
    series["points"] = [point] * 2001
    with pytest.raises(r.InvalidReport, match="more than 2000"):
        r.parse_timeseries(series)


def test_timeseries_draws_incident_bands_with_labels() -> None:
    chart = r.timeseries_chart(r.parse_timeseries(fx.timeseries()))
    root = parse_svg(chart.svg())
    bands = [g for g in root.iter(f"{SVG}g") if g.get("data-incident")]
    assert len(bands) == 2
    assert "incident (severe)" in texts(bands[0])
    assert "incident, open" in texts(bands[1])
    assert "2 incidents shaded." in chart.desc
    assert "345 failures in 19,200 calls" in chart.desc


def test_funnel_and_outcomes_say_their_numbers_in_words() -> None:
    chart = r.compensation_chart(r.parse_compensation(fx.compensation()))
    words = texts(parse_svg(chart.svg()))
    assert "40 (40.0%)" in words and "USD: 200 issued, 80 redeemed" in words
    assert chart.desc.startswith("100 vouchers issued, 80 shown, 40 redeemed, 2 reversed.")
    chart = r.outcomes_chart(r.parse_outcomes(fx.outcomes()))
    root = parse_svg(chart.svg())
    assert "85.0% (34 of 40), 95% CI 71.0%\u201393.0%" in texts(root)
    assert "no users" in texts(root)
    assert "Observational, not causal" in chart.desc
    assert len(root.findall(f"{SVG}line")) == 6  # two whiskers with two caps each


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total_failures": -1}, "total_failures must be a whole number"),
        ({"total_failures": True}, "total_failures must be a whole number"),
        ({"since": "yesterday"}, "since must be an RFC 3339 time"),
        ({"since": "2026-11-24T12:00:00"}, "with a zone"),
        ({"values": "many"}, "values must be a list"),
        ({"dimension": "x" * 2000}, "at most 1024 characters"),
    ],
)
def test_bad_reports_are_refused_with_the_member_named(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(r.InvalidReport, match=message):
        r.parse_breakdowns(fx.seed_breakdown("os_version") | change)


def test_bad_values_are_refused() -> None:
    document = fx.seed_breakdown("os_version")
    document["values"][0]["failure_share"] = 1.5
    with pytest.raises(r.InvalidReport, match=r"values\[0\]: failure_share must be from 0 to 1"):
        r.parse_breakdowns(document)
    document["values"][0]["failure_share"] = float("nan")
    with pytest.raises(r.InvalidReport, match="finite"):
        r.parse_breakdowns(document)
    with pytest.raises(r.InvalidReport, match="must be an object"):
        r.parse_outcomes([])
    with pytest.raises(r.InvalidReport, match="step must be one of"):
        r.parse_timeseries(fx.timeseries() | {"step": "week"})


def test_the_terminal_table_marks_the_suspect_twice() -> None:
    table = r.breakdown_table(os_versions())
    lines = table.splitlines()
    suspect = [line for line in lines if "17.2" in line]
    assert len(suspect) == 1
    assert suspect[0].startswith("*") and suspect[0].endswith(r.SUSPECT_MARK)
    assert "80.0%" in suspect[0] and "8.0\u00d7" in suspect[0]
    assert sum(r.SUSPECT_MARK in line for line in lines) == 1
    assert "(unknown)" in table
    assert "1,000 failures in 20,000 calls" in lines[0]


def test_terminal_tables_never_emit_control_characters() -> None:
    outputs = [
        *(r.breakdown_table(b) for b in r.parse_breakdowns(fx.hostile(fx.seed_breakdowns()))),
        r.crosstab_table(r.parse_crosstab(fx.hostile(fx.seed_crosstab()))),
        r.timeseries_summary(r.parse_timeseries(fx.hostile(fx.timeseries()))),
        r.compensation_table(r.parse_compensation(fx.hostile(fx.compensation()))),
        r.outcomes_table(r.parse_outcomes(fx.hostile(fx.outcomes()))),
    ]
    for text in outputs:
        assert not any(ord(ch) < 0x20 and ch != "\n" for ch in text), text
        assert "\u202e" not in text


def test_other_tables() -> None:
    funnel = r.compensation_table(r.parse_compensation(fx.compensation()))
    assert "total" in funnel and "USD: 200 issued, 80 redeemed" in funnel
    assert "coupon (USD): 80 of 1,000 spent, 920 left" in funnel
    outcomes = r.outcomes_table(r.parse_outcomes(fx.outcomes()))
    assert "85.0%" in outcomes and "71.0%..93.0%" in outcomes and "Observational" in outcomes
    grid = r.crosstab_table(r.parse_crosstab(fx.seed_crosstab()))
    assert "70.0%*" in grid
    summary = r.timeseries_summary(r.parse_timeseries(fx.timeseries()))
    assert "worst hour: 2026-11-30 09:00 (80 failures)" in summary
    assert "incident inc-2 *: 2026-11-30 22:00 .. open" in summary


def test_csv_has_one_row_per_value_and_defuses_formulas() -> None:
    text = r.breakdown_csv(r.parse_breakdowns(fx.seed_breakdowns()))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == sum(len(b["values"]) for b in fx.seed_breakdowns())
    suspect = [row for row in rows if row["suspect"] == "true"]
    assert [(s["dimension"], s["value"], s["lift"]) for s in suspect] == [
        ("os_version", "17.2", "8")
    ]
    assert suspect[0]["first_seen"] == "2026-11-24T12:05:00Z"
    hostile = fx.seed_breakdown("os_version")
    hostile["values"][0]["value"] = '=HYPERLINK("http://evil")'
    rows = list(csv.DictReader(io.StringIO(r.breakdown_csv(r.parse_breakdowns(hostile)))))
    assert rows[0]["value"].startswith("'=")
    cross = list(csv.reader(io.StringIO(r.crosstab_csv(r.parse_crosstab(fx.seed_crosstab())))))
    assert cross[0][:2] == ["os_version", "app_version"] and len(cross) == 5


def test_labels_from_a_catalogue_section() -> None:
    labels = r.ChartLabels.from_mapping(
        {"suspect": "疑似", "dimension.os_version": "系统版本", "group.redeemed": "已兑换"}
    )
    chart = r.breakdown_chart(os_versions(), labels)
    assert chart.title == "Failures by 系统版本"
    assert "\u25c0 疑似 \u00b7 lift 8.0\u00d7" in texts(parse_svg(chart.svg()))
    assert labels.group("redeemed") == "已兑换" and labels.group("not_offered") == "not offered"


def test_png_is_rendered_or_refused_with_a_configuration_error() -> None:
    document = r.combine(all_charts(), title="report")
    if not r.png_available():
        with pytest.raises(r.PngUnavailable):
            r.svg_to_png(document)
        return
    png = r.svg_to_png(document)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert issubclass(r.PngUnavailable, ConfigurationError)


def test_png_without_cairosvg_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cairosvg", None)  # import now fails as if absent
    assert not r.png_available()
    with pytest.raises(r.PngUnavailable, match=r"pip install 'errdiscount-sdk\[png\]'"):
        r.svg_to_png("<svg xmlns='http://www.w3.org/2000/svg'/>")
