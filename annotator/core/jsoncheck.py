"""Limits on JSON from clients, checked before it reaches a jsonb column: one answer on every database.

PostgreSQL cannot store a NUL character in jsonb (or text) and SQLite can; deeply nested values
overflow Python's recursion in the encoders. Request bodies are checked once, in the API's JSON
parser (core.parsers); values that do not come through it (imported files) are checked where they
are cleaned (annotations.attributes).
"""
from __future__ import annotations

import re
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


def json_text_is_plain(body: bytes, *, max_depth: int = MAX_DEPTH) -> bool:
    """True when JSON text that orjson accepted certainly has no problem for `json_problem`.

    Read from the bytes at C speed, where walking the parsed value costs ~20 ms for a
    100-polygon save (10,000 numbers): valid JSON can spell a NUL character only as the escape
    \\u0000 (a raw control character is a parse error), and removing innermost `[]` / `{}` pairs
    `max_depth` times empties the brackets of text nested no deeper than that (strings removed
    first: they may hold brackets). False means "walk it" (json_problem words the refusal).
    """
    if b"\\u0000" in body:
        return False
    # Only the brackets stay, all spelled [ ]: replace() does not scan its own result again, so
    # each pass removes exactly one level (with two kinds, "{[]}" would lose two).
    brackets = _STRINGS.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
    return not brackets


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
