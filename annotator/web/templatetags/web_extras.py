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
