"""Limits on JSON from clients, checked before it reaches a jsonb column: one answer on every database.

PostgreSQL cannot store a NUL character in jsonb (or text) and SQLite can; deeply nested values
overflow Python's recursion in the encoders. Request bodies are checked once, in the API's JSON
parser (core.parsers); values that do not come through it (imported files) are checked where they
are cleaned (annotations.attributes).
"""
from __future__ import annotations

from typing import Any

# Deep enough for every payload of the API (an annotation save nests 8 levels: body, list, object,
# geometry, polygons, polygon, ring, point) with room for attributes.
MAX_DEPTH = 32


def json_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `value` (parsed JSON) may not be stored, or None. Iterative: any depth is safe to walk."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text may not contain a NUL character (\\u0000)"
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                return f"values may be nested at most {max_depth} levels deep"
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and "\x00" in key:
                        return "keys may not contain a NUL character (\\u0000)"
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None
