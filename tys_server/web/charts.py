"""Inline SVG charts drawn on the server (the venue network may be closed: no JS, no CDN).

Pure: lists of numbers in, SVG markup out. Every text that reaches the markup is
escaped here, so callers may embed the result unescaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

LABEL_MAX_CHARS = 28


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above value (1 for nothing to show)."""
    if not math.isfinite(value) or value <= 0.0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def format_number(value: float) -> str:
    """Short axis text: 950, 12.5, 12k, 1.2M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M".replace(".0M", "M")
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def shorten(text: str, limit: int = LABEL_MAX_CHARS) -> str:
    """Keep the end of a long label (zone paths differ in their last elements)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _open(width: int, height: int, title: str, kind: str) -> list[str]:
    label = escape(title)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{label}"><title>{label}</title>']


def _no_data(parts: list[str], width: int, height: int) -> str:
    parts.append(f'<text class="empty" x="{width / 2:.0f}" y="{height / 2:.0f}" '
                 'text-anchor="middle">No data yet</text></svg>')
    return "".join(parts)


def line_chart(values: Sequence[float], *, title: str, x_labels: Sequence[str] = (),
               width: int = 600, height: int = 220) -> str:
    """Values evenly spaced left to right as one polyline over a filled area."""
    parts = _open(width, height, title, "line-chart")
    if not values:
        return _no_data(parts, width, height)
    left, right, top, bottom = 44, 12, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max(values))
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1.0 - fraction)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" '
                     f'y2="{y:.1f}"/><text class="axis" x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{format_number(top_value * fraction)}</text>')
    step = plot_w / (len(values) - 1) if len(values) > 1 else 0.0
    points = []
    for index, value in enumerate(values):
        x = left + (step * index if len(values) > 1 else plot_w / 2)
        y = top + plot_h * (1.0 - max(0.0, value) / top_value)
        points.append(f"{x:.1f},{y:.1f}")
    baseline = f"{top + plot_h:.1f}"
    first_x, last_x = points[0].split(",")[0], points[-1].split(",")[0]
    parts.append(f'<polygon class="area" points="{first_x},{baseline} {" ".join(points)} '
                 f'{last_x},{baseline}"/>')
    parts.append(f'<polyline class="series" points="{" ".join(points)}" '
                 f'data-points="{len(values)}"/>')
    if x_labels:
        anchors = ("start", "middle", "end")
        count = len(x_labels)
        for index, text in enumerate(x_labels):
            fraction = index / (count - 1) if count > 1 else 0.5
            anchor = anchors[0] if fraction == 0 else anchors[2] if fraction == 1 else anchors[1]
            parts.append(f'<text class="axis" x="{left + plot_w * fraction:.1f}" '
                         f'y="{height - 8}" text-anchor="{anchor}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, width: int = 600,
              bar_height: int = 22) -> str:
    """One horizontal bar per (label, value), in the given order, label on the left."""
    gap, label_w, value_w = 6, 200, 56
    height = max(len(items), 1) * (bar_height + gap) + gap
    parts = _open(width, height, title, "bar-chart")
    if not items:
        return _no_data(parts, width, height)
    plot_w = width - label_w - value_w
    top_value = nice_ceiling(max(value for _, value in items))
    for index, (label, value) in enumerate(items):
        y = gap + index * (bar_height + gap)
        bar_w = plot_w * max(0.0, value) / top_value
        text_y = y + bar_height / 2 + 4
        parts.append(
            f'<g class="bar-row"><title>{escape(label)}: {format_number(value)}</title>'
            f'<text class="label" x="{label_w - 8}" y="{text_y:.1f}" text-anchor="end">'
            f'{escape(shorten(label))}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{bar_w:.1f}" '
            f'height="{bar_height}" data-value="{format_number(value)}"/>'
            f'<text class="value" x="{label_w + bar_w + 6:.1f}" y="{text_y:.1f}">'
            f'{format_number(value)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
