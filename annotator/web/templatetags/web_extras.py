"""Template filters of the server-rendered pages."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def basename(path: str) -> str:
    """The file name of an archive path ("photos/2024/a.jpg" → "a.jpg"): what tells images apart in a tile."""
    return str(path or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


@register.filter
def dirname(path: str) -> str:
    """The folder part of an archive path ("photos/2024/a.jpg" → "photos/2024"), "" for a bare name."""
    text = str(path or "").replace("\\", "/").rstrip("/")
    return text.rsplit("/", 1)[0] if "/" in text else ""


@register.filter
def schema_summary(schema: object) -> str:
    """A label's attribute schema in a few words: "occluded (yes/no) · colour (one of 3, required)"."""
    if not isinstance(schema, dict) or not schema:
        return ""
    parts = []
    # Names in alphabetical order: PostgreSQL's jsonb does not keep the order keys were written in.
    for name, spec in sorted(schema.items()):
        if not isinstance(spec, dict):
            continue
        choices = spec.get("choices") or []
        if choices:
            kind = f"{'several' if spec.get('multiple') else 'one'} of {len(choices)}"
        else:
            kind = {"boolean": "yes/no", "integer": "whole number", "number": "number"}.get(spec.get("type"), "text")
        low, high = spec.get("min"), spec.get("max")
        if low is not None and high is not None:
            kind += f" {low}–{high}"
        elif low is not None:
            kind += f" from {low}"
        elif high is not None:
            kind += f" up to {high}"
        parts.append(f"{name} ({kind}{', required' if spec.get('required') else ''})")
    return " · ".join(parts)


@register.filter
def export_filters(filters: object) -> str:
    """A dataset version's filters in words: "accepted images · labels cat, dog · with the image files"."""
    if not isinstance(filters, dict):
        return ""
    status = filters.get("status") or "all"
    statuses = [str(s) for s in (status if isinstance(status, (list, tuple)) else [status])]
    parts = ["all images" if statuses in (["all"], []) else f"{' and '.join(s.replace('_', ' ') for s in statuses)} images"]
    labels = filters.get("labels")
    if labels:
        parts.append(f"labels {', '.join(str(label) for label in labels)}")
    if filters.get("include_images"):
        parts.append("with the image files")
    if filters.get("predictions"):
        parts.append("with model predictions")
    return " · ".join(parts)


@register.filter
def short_error(text: object, limit: int = 100) -> str:
    """The first sentence of a job's error, at most `limit` characters (the whole text goes in a details box)."""
    first = str(text or "").strip().split("\n", 1)[0]
    for stop in (". ", "; "):
        if stop in first:
            first = first.split(stop, 1)[0] + ("." if stop == ". " else "")
            break
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
