"""Small server-rendered SVG charts for the Quality page (no script, no inline style: the site's CSP
allows neither; colours are SVG presentation attributes)."""
from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: one colour per series, distinguishable in grey too (light to dark alternate)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#7f7f7f")

Point = tuple[float, float | None]

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 120, 12, 36


def _x(value: float, lo: float, hi: float) -> float:
    return LEFT + (value - lo) / ((hi - lo) or 1) * (WIDTH - LEFT - RIGHT)


def _y(value: float) -> float:
    return TOP + (1 - value) * (HEIGHT - TOP - BOTTOM)


def line_chart(
    series: Sequence[tuple[str, Sequence[Point]]], *, x_ticks: Sequence[tuple[float, str]], x_label: str, y_label: str,
    testid: str,
) -> SafeString:
    """Lines of y in [0, 1] against x, one per named series; a None y breaks the line (a gap, not a
    fall to zero). x runs over the ticks' range."""
    xs = [x for x, _ in x_ticks] or [0.0, 1.0]
    lo, hi = min(xs), max(xs)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(y_label)} against {escape(x_label)}" '
        f'data-testid="{escape(testid)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = _y(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{tick:g}</text>')
    for x, label in x_ticks:
        parts.append(f'<text x="{_x(x, lo, hi):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="11" fill="#555">{escape(label)}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle" font-size="11" fill="#333">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" font-size="11" fill="#333" '
                 f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">{escape(y_label)}</text>')
    for k, (name, points) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append((_x(x, lo, hi), _y(max(0.0, min(1.0, y)))))
        for run in runs:
            if len(run) > 1:
                coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for px, py in run:
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{escape(name)}</title></circle>')
        ly = TOP + 14 + 16 * k
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 24}" y="{ly}" font-size="11" fill="#333">{escape(name[:14])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every text in it went through escape()


def bar_chart(rows: Sequence[tuple[str, Sequence[float | None]]], *, measures: Sequence[str], testid: str) -> SafeString:
    """Horizontal bars in [0, 1]: one group per row (an annotator), one bar per measure (F1, mean IoU)."""
    bar, gap = 12, 10
    group = bar * len(measures) + gap
    height = TOP + group * max(1, len(rows)) + BOTTOM
    left, right = 110, 150  # room on the right for the value labels, then the legend
    span = WIDTH - left - right
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(", ".join(measures))} per annotator" '
        f'data-testid="{escape(testid)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x = left + tick * span
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - BOTTOM + 14}" text-anchor="middle" font-size="11" fill="#555">{tick:g}</text>')
    for r, (name, values) in enumerate(rows):
        y0 = TOP + r * group
        parts.append(f'<text x="{left - 6}" y="{y0 + group / 2:.0f}" text-anchor="end" font-size="11" fill="#333">{escape(name[:16])}</text>')
        for m, value in enumerate(values):
            if value is None:
                continue
            width = max(0.0, min(1.0, value)) * span
            parts.append(f'<rect x="{left}" y="{y0 + m * bar}" width="{width:.1f}" height="{bar - 2}" fill="{PALETTE[m % len(PALETTE)]}">'
                         f'<title>{escape(name)} {escape(measures[m])} {value:.3f}</title></rect>')
            parts.append(f'<text x="{left + width + 4:.1f}" y="{y0 + m * bar + bar - 3}" font-size="10" fill="#333">{value:.2f}</text>')
    for m, measure in enumerate(measures):
        ly = TOP + 14 + 16 * m
        parts.append(f'<rect x="{WIDTH - right + 50}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[m % len(PALETTE)]}"/>')
        parts.append(f'<text x="{WIDTH - right + 64}" y="{ly}" font-size="11" fill="#333">{escape(measure)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every text in it went through escape()
