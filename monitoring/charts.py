"""Lab trend charts as inline SVG (no JavaScript, no CDN): the reference band as a shaded strip, the
series as a line with its points coloured by interpretation, T0 (first dose) as a dashed line (also when
it falls after the last result: the axis reaches it), and the time in range since T0 when known.

Pure: takes one analyte entry of `monitoring.selectors.trends_for` and returns SVG markup. Every text that
reaches the markup is escaped. Dates are written as the pages write them ("4 Jan 2027", tracker.display) and a
point's interpretation by its label ("Critically low"), not the API's ISO dates and codes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

from patients.models import Interpretation
from tracker.display import day as day_text

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36
COLOURS = {
    "normal": "#1b7f3b",
    "low": "#b35c00",
    "high": "#b35c00",
    "critically_low": "#c0142b",
    "critically_high": "#c0142b",
}


def interpretation_label(code: str | None) -> str:
    """The label of an interpretation code: "Critically low" for critically_low, "No range" for none
    (patients.models.Interpretation)."""
    try:
        return str(Interpretation(code or "").label)
    except ValueError:  # a code this version does not know: shown as it is
        return str(code)


def _ticks(low: Decimal, high: Decimal, count: int = 4) -> list[Decimal]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) inside [low, high]."""
    raw = (high - low) / count
    magnitude = Decimal(10) ** raw.adjusted()
    step = next(
        m * magnitude for m in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)) if m * magnitude >= raw
    )
    first = (low / step).to_integral_value(rounding="ROUND_CEILING") * step
    ticks = []
    while first <= high:
        ticks.append(first)
        first += step
    return ticks


def _fmt(value: Decimal) -> str:
    text = f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def svg_chart(entry: dict[str, Any], t0: str | None) -> str:
    points = entry["points"]
    if not points:
        return ""
    days = [date.fromisoformat(p["on"]) for p in points]
    values = [Decimal(p["value"]) for p in points]
    band = entry["band"]
    band_low = Decimal(band["low"]) if band["low"] is not None else None
    band_high = Decimal(band["high"]) if band["high"] is not None else None
    candidates = values + [v for v in (band_low, band_high) if v is not None]
    y_min, y_max = min(candidates), max(candidates)
    pad = (y_max - y_min) * Decimal("0.1") or Decimal(1)
    y_min, y_max = max(Decimal(0), y_min - pad), y_max + pad
    marks = days + ([date.fromisoformat(t0)] if t0 else [])
    start, end = min(marks), max(marks)
    span = max((end - start).days, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: date) -> float:
        return LEFT + plot_w * (day - start).days / span

    def y(value: Decimal) -> float:
        return float(TOP + plot_h * (1 - (value - y_min) / (y_max - y_min)))

    title = f"{entry['name']} ({entry['unit']})"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)} trend">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    if band_low is not None or band_high is not None:
        top = y(band_high) if band_high is not None else TOP
        bottom = y(band_low) if band_low is not None else TOP + plot_h
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{bottom - top:.1f}" '
            f'fill="#d8f0df"><title>Reference range {escape(str(band["low"]))}-{escape(str(band["high"]))}'
            f" ({escape(band['source'])})</title></rect>"
        )
    for tick in _ticks(y_min, y_max):
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{_fmt(tick)}</text>"
        )
    if t0:
        tx = x(date.fromisoformat(t0))
        # The label goes on the side of the line with room for it.
        label_x, anchor = (tx - 3, "end") if tx > LEFT + plot_w * 0.8 else (tx + 3, "start")
        parts.append(
            f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{TOP + plot_h}" stroke="#444" '
            f'stroke-dasharray="4 3"/><text x="{label_x:.1f}" y="{TOP + 12}" font-size="11" fill="#444" '
            f'text-anchor="{anchor}">first dose</text>'
        )
    tir = entry.get("time_in_range")
    if tir:
        since = "since first dose" if tir.get("since") == "T0" else "since first result"
        parts.append(
            f'<text class="time-in-range" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" font-size="11" '
            f'fill="#1b4d2b" text-anchor="middle">{escape(str(tir["percent"]))}% of '
            f"{escape(str(tir['days']))} days in range {since}</text>"
        )
    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, values, strict=True))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1f4e8c" stroke-width="2"/>')
    for point, day, value in zip(points, days, values, strict=True):
        colour = COLOURS.get(point["interpretation"], "#1f4e8c")
        parts.append(
            f'<circle class="point" cx="{x(day):.1f}" cy="{y(value):.1f}" r="4" fill="{colour}">'
            f"<title>{escape(day_text(day))}: {escape(point['value'])} {escape(entry['unit'])}"
            f" ({escape(interpretation_label(point['interpretation']))})</title></circle>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="11" fill="#555">{day_text(start)}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" font-size="11" fill="#555" text-anchor="end">'
        f"{day_text(end)}</text></svg>"
    )
    return "".join(parts)
