"""The lab trend chart (monitoring/charts.py): pure, no database."""

from __future__ import annotations

import re
from typing import Any

from monitoring.charts import LEFT, RIGHT, WIDTH, svg_chart


def entry(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Haemoglobin",
        "unit": "g/L",
        "band": {"low": "120", "high": "160", "source": "RULES §5.2"},
        "points": [
            {"on": "2027-01-01", "value": "95", "interpretation": "low"},
            {"on": "2027-01-15", "value": "125", "interpretation": "normal"},
        ],
        **extra,
    }


def t0_line_x(svg: str) -> float:
    match = re.search(r'<line x1="([\d.]+)"', svg)
    assert match, svg
    return float(match.group(1))


def test_it_marks_t0_inside_the_plot_even_after_the_last_result() -> None:
    svg = svg_chart(entry(), "2027-01-20")
    assert "first dose" in svg
    assert LEFT <= t0_line_x(svg) <= WIDTH - RIGHT


def test_it_marks_t0_between_results_where_it_falls() -> None:
    x = t0_line_x(svg_chart(entry(), "2027-01-08"))
    assert abs(x - (LEFT + (WIDTH - LEFT - RIGHT) / 2)) < 1


def test_it_writes_the_time_in_range_when_known_and_nothing_otherwise() -> None:
    svg = svg_chart(entry(time_in_range={"percent": 42.9, "days": 14, "since": "T0"}), "2027-01-01")
    assert "42.9% of 14 days in range since first dose" in svg
    assert "in range" not in svg_chart(entry(time_in_range=None), None).replace("Reference range", "")


def test_it_shades_the_reference_band() -> None:
    assert 'class="band"' in svg_chart(entry(), None)


def test_dates_and_interpretations_read_as_the_page_writes_them() -> None:
    """The axis and each point's tooltip say "1 Jan 2027" and "Critically low", not the API's ISO date and code."""
    points = [
        {"on": "2027-01-01", "value": "45", "interpretation": "critically_low"},
        {"on": "2027-01-15", "value": "125", "interpretation": "normal"},
        {"on": "2027-01-29", "value": "130", "interpretation": ""},
    ]
    svg = svg_chart(entry(points=points), None)
    assert "<title>1 Jan 2027: 45 g/L (Critically low)</title>" in svg
    assert "<title>29 Jan 2027: 130 g/L (No range)</title>" in svg
    labels = re.findall(r'fill="#555"(?: text-anchor="end")?>([^<]+)</text>', svg)
    assert labels[-2:] == ["1 Jan 2027", "29 Jan 2027"]
    assert "2027-01" not in svg and "critically_low" not in svg
