"""A small JSON Schema checker for completions asked for with a json_schema.

Supported keywords: ``type`` (one or a list: object, array, string, number, integer,
boolean, null), ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``
(false or a schema), ``items`` (one schema), ``anyOf``, ``oneOf``, ``allOf``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``minimum``/``maximum`` and
``exclusiveMinimum``/``exclusiveMaximum`` (numbers), and ``$ref`` to a place in the same
schema (``#/$defs/Name``, as pydantic writes nested models; the referring schema's other
keywords apply too). Other keywords (``pattern``, ``format``, …) are not checked: the
provider's own structured-output mode enforces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "MAX_REF_HOPS",
    "SUPPORTED_KEYWORDS",
    "completion_violation",
    "resolve_pointer",
    "violation",
]

SUPPORTED_KEYWORDS = (
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
)

# A chain of $ref to $ref longer than this is a loop (or absurd): it is left unchecked.
MAX_REF_HOPS = 32

# keyword → what a value that breaks the bound is, compared with it.
_BOUNDS = {
    "minimum": "less than",
    "maximum": "more than",
    "exclusiveMinimum": "not more than",
    "exclusiveMaximum": "not less than",
}


def completion_violation(text: str | None, schema: Mapping[str, Any]) -> str | None:
    """The first rule a completion's text breaks (its JSON, then the schema), else None."""
    if text is None:
        return "$: the completion has no text (type)"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "$: the completion is not valid JSON (type)"
    return violation(value, schema)


def violation(value: Any, schema: Any, path: str = "$", root: Any = None) -> str | None:
    """The first rule `value` breaks, as ``"PATH: what is wrong (keyword)"``; None if none.

    `root` is the whole schema, which ``$ref`` pointers are resolved in (default: `schema`).
    """
    if not isinstance(schema, Mapping):
        return None  # true/false schemas and junk: nothing we can check
    root = schema if root is None else root
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        if target is not None:
            problem = violation(value, target, path, root)
            if problem is not None:
                return problem
    for keyword in ("allOf", "oneOf"):
        options = schema.get(keyword)
        if not isinstance(options, list) or not options:
            continue
        problems = [violation(value, option, path, root) for option in options]
        if keyword == "allOf":
            problem = next((p for p in problems if p is not None), None)
            if problem is not None:
                return problem
        else:
            matched = sum(p is None for p in problems)
            if matched != 1:
                how = "none" if matched == 0 else f"{matched}"
                return f"{path}: matches {how} of the oneOf schemas, not exactly one (oneOf)"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            return f"{path}: expected {' or '.join(map(str, kinds))}, got {_type_of(value)} (type)"
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{path}: {_short(value)} is not one of the allowed values (enum)"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {_short(value)} is not {_short(schema['const'])} (const)"
    any_of = schema.get("anyOf")
    if (
        isinstance(any_of, list)
        and any_of
        and all(violation(value, option, path, root) is not None for option in any_of)
    ):
        return f"{path}: matches none of the anyOf schemas (anyOf)"
    if isinstance(value, dict):
        return _object(value, schema, path, root)
    if isinstance(value, list):
        return _array(value, schema, path, root)
    if isinstance(value, str):
        return _sized(len(value), schema, path, "minLength", "maxLength", "characters")
    if isinstance(value, int | float) and not isinstance(value, bool):
        for keyword, says in _BOUNDS.items():
            bound = schema.get(keyword)
            if (
                isinstance(bound, int | float)
                and not isinstance(bound, bool)
                and not _within(keyword, value, bound)
            ):
                return f"{path}: {value!r} is {says} {bound!r} ({keyword})"
    return None


def _resolve(ref: Any, root: Any) -> Any:
    """The schema a local ``$ref`` (``#``, ``#/$defs/Name``, any JSON pointer into the
    schema) points at, following chains; None when it cannot be resolved (left unchecked)."""
    for _ in range(MAX_REF_HOPS):
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        target = resolve_pointer(root, ref)
        if not (isinstance(target, Mapping) and set(target) == {"$ref"}):
            return target
        ref = target["$ref"]
    return None


def resolve_pointer(root: Any, ref: str, default: Any = None) -> Any:
    """What a local JSON pointer names in `root` (``#`` the root itself, ``#/$defs/Item`` a
    place in it, ``~1`` and ``~0`` standing for / and ~), else `default`."""
    node = root
    for raw in ref.removeprefix("#").split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def _object(value: dict[str, Any], schema: Mapping[str, Any], path: str, root: Any) -> str | None:
    for name in schema.get("required") or []:
        if name not in value:
            return f"{path}: required property {name!r} is missing (required)"
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if name in properties:
            problem = violation(item, properties[name], f"{path}.{name}", root)
        elif extra is False:
            return f"{path}: property {name!r} is not allowed (additionalProperties)"
        else:
            problem = violation(item, extra, f"{path}.{name}", root)
        if problem is not None:
            return problem
    return None


def _array(value: list[Any], schema: Mapping[str, Any], path: str, root: Any) -> str | None:
    problem = _sized(len(value), schema, path, "minItems", "maxItems", "items")
    if problem is not None:
        return problem
    items = schema.get("items")
    for index, item in enumerate(value):
        problem = violation(item, items, f"{path}[{index}]", root)
        if problem is not None:
            return problem
    return None


def _sized(
    size: int, schema: Mapping[str, Any], path: str, low: str, high: str, unit: str
) -> str | None:
    least, most = schema.get(low), schema.get(high)
    if isinstance(least, int) and size < least:
        return f"{path}: {size} {unit}, fewer than {least} ({low})"
    if isinstance(most, int) and size > most:
        return f"{path}: {size} {unit}, more than {most} ({high})"
    return None


def _within(keyword: str, value: float, bound: float) -> bool:
    if keyword == "minimum":
        return value >= bound
    if keyword == "maximum":
        return value <= bound
    if keyword == "exclusiveMinimum":
        return value > bound
    return value < bound


def _is_type(value: Any, kind: Any) -> bool:
    if kind == "integer":
        return _is_number(value) and float(value).is_integer()
    if kind == "number":
        return _is_number(value)
    checks: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
    }
    if kind == "null":
        return value is None
    expected = checks.get(kind) if isinstance(kind, str) else None
    return expected is None or isinstance(value, expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if isinstance(value, int) else "number"
    names: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."
