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
        if spec.get("min") is not None or spec.get("max") is not None:
            kind += f" {spec.get('min', '…')}–{spec.get('max', '…')}"
        parts.append(f"{name} ({kind}{', required' if spec.get('required') else ''})")
    return " · ".join(parts)
