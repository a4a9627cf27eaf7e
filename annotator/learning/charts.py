"""Small inline SVG charts for the models page (per-class AP bars, PR curve, training loss), rendered server-side.

No chart library and no CDN: the page must work offline, and these are three simple plots.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_ACCENT = "#2f6fed"
_MUTED = "#6b7480"
_LINE = "#dfe3e8"


def ap_bars(per_class: Mapping[str, float | None], *, width: int = 420) -> SafeString:
    """Horizontal bars of mask AP per class; classes without ground truth show 'n/a'."""
    if not per_class:
        return mark_safe("")
    row, label_w, value_w = 22, 120, 48
    bar_w = width - label_w - value_w
    height = row * len(per_class) + 8
    parts = [f'<svg class="chart ap-bars" role="img" aria-label="Mask AP per class" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for index, (name, value) in enumerate(per_class.items()):
        y = 4 + index * row
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(str(name))[:24]}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row - 8}" fill="#e9edf2"/>')
        if value is not None:
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * max(0.0, min(1.0, value)):.1f}" height="{row - 8}" fill="{_ACCENT}"/>')
        text = f"{value:.3f}" if value is not None else "n/a"
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 15}" font-size="12" fill="{_MUTED}">{text}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _plot(
    points: Sequence[tuple[float, float]], *, x_label: str, y_label: str, x_max: float, y_max: float, title: str,
    width: int = 320, height: int = 220,
) -> SafeString:
    left, bottom, top, right = 40, 30, 10, 10
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + plot_w * (x / x_max if x_max else 0)

    def sy(y: float) -> float:
        return top + plot_h * (1 - (y / y_max if y_max else 0))

    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for tick in range(5):
        fy = y_max * tick / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(fy):.1f}" y2="{sy(fy):.1f}" stroke="{_LINE}"/>')
        parts.append(f'<text x="{left - 4}" y="{sy(fy) + 4:.1f}" text-anchor="end" font-size="10" fill="{_MUTED}">{fy:.2g}</text>')
        fx = x_max * tick / 4
        parts.append(f'<text x="{sx(fx):.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="10" fill="{_MUTED}">{fx:.2g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 2}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 12 {top + plot_h / 2})">{escape(y_label)}</text>')
    if points:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{_ACCENT}" stroke-width="2"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def pr_plot(curve: Sequence[Mapping[str, float]]) -> SafeString:
    """Precision against recall (mask IoU 0.5), as stored by the evaluation."""
    if not curve:
        return mark_safe("")
    points = [(float(p["recall"]), float(p["precision"])) for p in curve]
    return _plot(points, x_label="recall", y_label="precision", x_max=1.0, y_max=1.0, title="Precision-recall curve")


def loss_plot(curve: Sequence[Mapping[str, Any]]) -> SafeString:
    """Training loss per epoch."""
    points = [(float(e["epoch"]), float(e["loss"])) for e in curve if "loss" in e and "epoch" in e]
    if not points:
        return mark_safe("")
    return _plot(points, x_label="epoch", y_label="loss", x_max=max(x for x, _ in points),
                 y_max=max(y for _, y in points) * 1.05 or 1.0, title="Training loss")
