"""The dashboard's charts as inline SVG bar charts, drawn on the server (no JavaScript, no CDN), in the
style of monitoring/charts.py. Each chart is decorative for assistive technology beyond its title: the
page puts the same numbers in a text table beside it (screen readers and print read the table).

Pure: takes the bars and returns SVG markup; every text that reaches the markup is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 36
BAR = "#005eb8"  # NHS blue
MUTED = "#aeb7bd"  # a closed day, or a figure that is context rather than the measure
AXIS = "#4c6272"


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar when `show_label`
    value: float
    title: str  # the tooltip: what the bar is, in words
    muted: bool = False
    show_label: bool = True


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (an axis that ends on a round number)."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 < value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def bar_chart(title: str, bars: Sequence[Bar], maximum: float | None = None, unit: str = "") -> str:
    if not bars:
        return ""
    top = maximum if maximum is not None else _nice_max(max(b.value for b in bars))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(bars)
    width = max(slot * 0.7, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="app-chart" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="{AXIS}"/>',
    ]
    # A half-way tick only where it is a whole number (counts are whole).
    for tick in (0, top / 2, top) if top % 2 == 0 else (0, top):
        y = TOP + plot_h * (1 - tick / top)
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{AXIS}">'
            f"{_fmt(tick)}{escape(unit)}</text>"
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e8edee"/>'
        )
    for index, bar in enumerate(bars):
        height = plot_h * min(bar.value, top) / top
        x = LEFT + slot * index + (slot - width) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{MUTED if bar.muted else BAR}"><title>{escape(bar.title)}</title></rect>'
        )
        if bar.show_label:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{HEIGHT - 14}" font-size="11" text-anchor="middle" '
                f'fill="{AXIS}">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
