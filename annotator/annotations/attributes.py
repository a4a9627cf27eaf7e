"""Values of an annotation that are not geometry: attributes (against the label's schema) and z-order.

Checked here, at the edge, so that an odd value gets the same 400 on SQLite and PostgreSQL
instead of a database error (a z-order past 32 bits, a NUL in jsonb) or a RecursionError.

A label's ``attributes_schema`` maps attribute names to specs::

    {"occluded": {"type": "boolean"},
     "colour":   {"type": "string", "choices": ["red", "green", "blue"]},
     "count":    {"type": "integer", "min": 0, "max": 100},
     "note":     {"type": "string", "max_length": 200}}

Types are boolean, integer, number and string; ``choices`` lists the allowed values, ``min`` and
``max`` bound numbers, ``max_length`` strings. A declared attribute may be null (not set).
``"multiple": true`` (with ``choices``) makes the value a list of distinct choices (several of);
``default`` is the value a new object starts with; ``"required": true`` means an object cannot be
submitted while it has no value (null, "" or [] count as none; see ``attributes_missing``).
Attributes the schema does not declare (flags brought in by imports: ``iscrowd``, ``truncated``)
are kept, within the general limits below.
"""
from __future__ import annotations

import math
from typing import Any

import orjson

from annotator.core.errors import DomainError
from annotator.core.jsoncheck import json_problem

# What the z_order column holds on every database (PostgreSQL's integer).
Z_ORDER_MIN, Z_ORDER_MAX = -(2**31), 2**31 - 1
MAX_ATTRIBUTES = 64
MAX_NAME_LENGTH = 100
MAX_STRING_LENGTH = 2000
# The attributes object is level 1; an undeclared attribute may hold a small nested value.
MAX_DEPTH = 4
MAX_BYTES = 16 * 1024
MAX_CHOICES = 500
# Integers beyond 64 bits become floats on the way in (orjson) and lose digits.
_INT_LIMIT = 2**63

TYPES = ("boolean", "integer", "number", "string")
_SPEC_KEYS = {"type", "choices", "min", "max", "max_length", "multiple", "default", "required"}


def z_order_clean(value: Any, *, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DomainError(f"{where}: z_order must be an integer")
    if not Z_ORDER_MIN <= value <= Z_ORDER_MAX:
        raise DomainError(f"{where}: z_order must be between {Z_ORDER_MIN} and {Z_ORDER_MAX}")
    return value


def attributes_clean(attributes: Any, *, schema: dict[str, Any], where: str) -> dict[str, Any]:
    """The attributes of one object, checked against its label's schema; DomainError naming the reason."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise DomainError(f"{where}: attributes must be an object")
    problem = json_problem(attributes, max_depth=MAX_DEPTH)
    if problem:
        raise DomainError(f"{where}: attributes: {problem}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise DomainError(f"{where}: at most {MAX_ATTRIBUTES} attributes per object")
    for name, value in attributes.items():
        if not name or len(name) > MAX_NAME_LENGTH:
            raise DomainError(f"{where}: attribute names must have 1 to {MAX_NAME_LENGTH} characters")
        spec = schema.get(name)
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            spec = None  # undeclared (or a schema saved before schemas were checked)
        if spec is not None and value is not None:
            reason = _value_problem(value, spec)
            if reason:
                raise DomainError(f"{where}: attribute {name!r} {reason}")
        elif isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            raise DomainError(f"{where}: attribute {name!r} is longer than {MAX_STRING_LENGTH} characters")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite_number(value):
            raise DomainError(f"{where}: attribute {name!r} is not a number that can be stored")
    if len(orjson.dumps(attributes)) > MAX_BYTES:
        raise DomainError(f"{where}: attributes take more than {MAX_BYTES // 1024} KB")
    return attributes


def _finite_number(value: int | float) -> bool:
    return (math.isfinite(value) if isinstance(value, float) else True) and abs(value) < _INT_LIMIT


def _value_problem(value: Any, spec: dict[str, Any]) -> str | None:
    if spec.get("multiple"):
        if not isinstance(value, list):
            return "must be a list of choices"
        if len(set(map(repr, value))) != len(value):
            return "lists a choice twice"
        single = {key: v for key, v in spec.items() if key != "multiple"}
        for item in value:
            reason = _value_problem(item, single)
            if reason:
                return f"has {item!r}, which {reason}"
        return None
    kind = spec["type"]
    if kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= _INT_LIMIT:
            return "must be an integer"
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not _finite_number(value):
            return "must be a number"
    elif not isinstance(value, str):
        return "must be text"
    elif len(value) > spec.get("max_length", MAX_STRING_LENGTH):
        return f"is longer than {spec.get('max_length', MAX_STRING_LENGTH)} characters"
    if "choices" in spec and value not in spec["choices"]:
        return f"must be one of {', '.join(map(repr, spec['choices'][:20]))}"
    if "min" in spec and value < spec["min"]:
        return f"must be at least {spec['min']}"
    if "max" in spec and value > spec["max"]:
        return f"must be at most {spec['max']}"
    return None


def attribute_schema_clean(schema: Any) -> dict[str, Any]:
    """A label's attribute schema, checked for shape (see the module docstring); DomainError otherwise."""
    if schema is None:
        return {}
    if not isinstance(schema, dict):
        raise DomainError("attributes_schema must be an object mapping attribute names to specs")
    problem = json_problem(schema, max_depth=MAX_DEPTH)
    if problem:
        raise DomainError(f"attributes_schema: {problem}")
    if len(schema) > MAX_ATTRIBUTES:
        raise DomainError(f"attributes_schema: at most {MAX_ATTRIBUTES} attributes per label")
    for name, spec in schema.items():
        where = f"attributes_schema.{name}"
        if not name or len(name) > MAX_NAME_LENGTH:
            raise DomainError(f"attributes_schema: attribute names must have 1 to {MAX_NAME_LENGTH} characters")
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise DomainError(f"{where}: give a type, one of {', '.join(TYPES)}")
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise DomainError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        bare = {key: value for key, value in spec.items() if key in ("type", "max_length")}
        if "max_length" in spec and (
            spec["type"] != "string" or not isinstance(spec["max_length"], int) or isinstance(spec["max_length"], bool)
            or not 1 <= spec["max_length"] <= MAX_STRING_LENGTH
        ):
            raise DomainError(f"{where}: max_length is for strings, from 1 to {MAX_STRING_LENGTH}")
        for bound in ("min", "max"):
            if bound in spec and (spec["type"] not in ("integer", "number") or _value_problem(spec[bound], {"type": spec["type"]})):
                raise DomainError(f"{where}: {bound} must be a {spec['type']}, for numbers only")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES:
                raise DomainError(f"{where}: choices must be a list of 1 to {MAX_CHOICES} values")
            for choice in choices:
                if choice is None or _value_problem(choice, bare):
                    raise DomainError(f"{where}: choice {choice!r} is not a {spec['type']}")
        if "multiple" in spec and (not isinstance(spec["multiple"], bool) or (spec["multiple"] and "choices" not in spec)):
            raise DomainError(f"{where}: multiple is true or false, and needs choices")
        if "required" in spec and not isinstance(spec["required"], bool):
            raise DomainError(f"{where}: required is true or false")
        if spec.get("default") is not None:
            reason = _value_problem(spec["default"], {key: v for key, v in spec.items() if key != "default"})
            if reason:
                raise DomainError(f"{where}: the default {reason}")
    if len(orjson.dumps(schema)) > MAX_BYTES * 4:
        raise DomainError(f"attributes_schema takes more than {MAX_BYTES * 4 // 1024} KB")
    return schema


def label_schema(project: Any, label_id: int) -> dict[str, Any]:
    """The attribute schema of one of `project`'s labels, read once per save (cached on the project object)."""
    cache: dict[int, dict[str, Any]] | None = getattr(project, "_attribute_schemas", None)
    if cache is None or label_id not in cache:
        # A label added since the last read (an import creates them as it goes) refreshes the cache.
        cache = label_schemas(project)
    return cache.get(label_id, {})


def label_schemas(project: Any) -> dict[int, dict[str, Any]]:
    """Every label of `project` with its attribute schema, read now (and cached for label_schema)."""
    cache = {
        pk: schema if isinstance(schema, dict) else {}
        # No ORDER BY: the label's default one joins the project.
        for pk, schema in project.labels.order_by().values_list("pk", "attributes_schema")
    }
    project._attribute_schemas = cache
    return cache


def _declared(schema: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(schema, dict):
        return {}
    return {name: spec for name, spec in schema.items() if isinstance(spec, dict) and spec.get("type") in TYPES}


def attribute_defaults(schema: Any) -> dict[str, Any]:
    """The attributes a new object of this label starts with (the schema's defaults)."""
    return {name: spec["default"] for name, spec in _declared(schema).items() if spec.get("default") is not None}


def attributes_missing(attributes: Any, schema: Any) -> list[str]:
    """The required attributes of the schema that have no value (missing, null, "" or [])."""
    values = attributes if isinstance(attributes, dict) else {}
    return [
        name for name, spec in _declared(schema).items()
        if spec.get("required") and values.get(name) in (None, "", [])
    ]


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off", ""}


def _coerce(value: Any, spec: dict[str, Any]) -> Any:
    """`value` (as another tool wrote it: often text) turned into the schema's type where it reads as one."""
    if spec.get("multiple"):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = orjson.loads(text)
                except orjson.JSONDecodeError:
                    pass
            if isinstance(value, str):
                value = [part.strip() for part in text.split(",") if part.strip()] if text else []
        if not isinstance(value, list):
            value = [value]
        single = {key: v for key, v in spec.items() if key != "multiple"}
        return [_coerce(item, single) for item in value]
    kind = spec["type"]
    if kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
    elif kind in ("integer", "number") and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        if kind == "integer" and number.is_integer():
            return int(number)
        return number if kind == "number" else value
    elif kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    elif kind == "string" and isinstance(value, (bool, int, float)):
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return text
    return value


def attributes_coerce(attributes: dict[str, Any], schema: Any) -> tuple[dict[str, Any], list[str]]:
    """Imported attributes made to fit the label's schema: values converted to its types ("true" → true,
    "3" → 3, "a,b" → ["a", "b"]); a value that still does not fit is left out and named in the warnings,
    so that one odd value does not stop an import. Undeclared attributes are kept as they are.
    """
    declared = _declared(schema)
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in attributes.items():
        spec = declared.get(name)
        if spec is None or value is None:
            out[name] = value
            continue
        converted = _coerce(value, spec)
        reason = _value_problem(converted, spec)
        if reason:
            warnings.append(f"attribute {name!r} {reason} (got {value!r}); left out")
            continue
        out[name] = converted
    return out, warnings
