"""The schema `extract` asks for: read from a file, taken from a pydantic model class or a
dict, and checked before anything is sent, so a typo is one message and not 10,000 errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.schema import resolve_pointer

__all__ = ["JSON_TYPES", "check_schema", "load_schema", "schema_of"]

JSON_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# Keywords whose value is one schema, a list of schemas, or a table of schemas.
_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
_TABLE = ("properties", "$defs", "definitions", "patternProperties")
_NUMBERS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "multipleOf",
)
_TOP = 'the top level must be {"type": "object", "properties": {…}}: the answer is one object'


def load_schema(path: str | Path) -> dict[str, Any]:
    """A JSON Schema file, checked; ConfigError (exit 2) saying what to fix."""
    where = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--schema {where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--schema {where}: cannot read it: {exc}") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--schema {where}: not valid JSON ({exc}); give a JSON Schema") from None
    check_schema(schema, f"--schema {where}")
    return dict(schema)


def schema_of(schema: Any) -> tuple[dict[str, Any], Any]:
    """``(JSON Schema, model class or None)`` for a pydantic model class (anything with
    ``model_json_schema()``) or a dict; checked."""
    model = None
    if hasattr(schema, "model_json_schema"):
        model, schema = schema, schema.model_json_schema()
    elif not isinstance(schema, Mapping):
        raise ConfigError(
            "schema must be a pydantic model class or a JSON Schema dict, "
            f"got {type(schema).__name__}"
        )
    check_schema(schema, "schema")
    return dict(schema), model


def check_schema(schema: Any, where: str = "schema") -> None:
    """Raise ConfigError naming the first thing that makes `schema` unusable: not an object,
    a top level that is not an object type, a keyword of the wrong shape, an unknown type,
    or a ``$ref`` that points nowhere in the document."""
    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where}: must be a JSON object (a JSON Schema); {_TOP}")
    kind = schema.get("type")
    if kind != "object" and not (isinstance(kind, list) and kind == ["object"]):
        raise ConfigError(f"{where}: {_TOP} (its type is {json.dumps(kind)})")
    _walk(schema, schema, "$", where)


def _walk(node: Any, root: Mapping[str, Any], path: str, where: str) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where}: {path} must be a schema (an object), got {json.dumps(node)}")

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {path}: {problem}")

    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        for one in kinds:
            if one not in JSON_TYPES:
                raise fail(f"type {json.dumps(one)} is not a JSON type ({', '.join(JSON_TYPES)})")
    required = node.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        raise fail("required must be a list of property names")
    enum = node.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise fail("enum must be a non-empty list of values")
    for keyword in _NUMBERS:
        value = node.get(keyword)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise fail(f"{keyword} must be a number, got {json.dumps(value)}")
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str):
            raise fail("$ref must be a string")
        if ref.startswith("#") and resolve_pointer(root, ref) is None:
            raise fail(f"$ref {ref!r} points to nothing in this schema")
    for keyword in _ONE:
        if keyword in node:
            sub = node[keyword]
            if keyword == "items" and isinstance(sub, list):  # the older tuple form
                for i, item in enumerate(sub):
                    _walk(item, root, f"{path}.items[{i}]", where)
            else:
                _walk(sub, root, f"{path}.{keyword}", where)
    for keyword in _LIST:
        if keyword in node:
            options = node[keyword]
            if not isinstance(options, list) or not options:
                raise fail(f"{keyword} must be a non-empty list of schemas")
            for i, option in enumerate(options):
                _walk(option, root, f"{path}.{keyword}[{i}]", where)
    for keyword in _TABLE:
        if keyword in node:
            table = node[keyword]
            if not isinstance(table, Mapping):
                raise fail(f"{keyword} must be an object of named schemas")
            for name, sub in table.items():
                _walk(sub, root, f"{path}.{keyword}.{name}", where)
