"""The json_schema checker: each supported keyword, what passes and the rule a failure names."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.schema import completion_violation, resolve_pointer, violation

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "role": {"enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "note": {"type": ["string", "null"]},
        "kind": {"const": "person"},
        "id": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
GOOD = {"name": "Ann", "age": 30, "score": 0.5, "role": "a", "tags": ["x"], "note": None}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({}, None),
        ({"age": 30.0}, None),  # an integral float is an integer in JSON
        ({"id": "x"}, None),
        ({"kind": "person"}, None),
        ({"name": 5}, "$.name: expected string, got integer (type)"),
        ({"age": True}, "$.age: expected integer, got boolean (type)"),
        ({"age": 1.5}, "$.age: expected integer, got number (type)"),
        ({"age": -1}, "$.age: -1 is less than 0 (minimum)"),
        ({"age": 151}, "$.age: 151 is more than 150 (maximum)"),
        ({"score": 0}, "$.score: 0 is not more than 0 (exclusiveMinimum)"),
        ({"score": 1}, "$.score: 1 is not less than 1 (exclusiveMaximum)"),
        ({"name": ""}, "$.name: 0 characters, fewer than 1 (minLength)"),
        ({"name": "Annabel"}, "$.name: 7 characters, more than 5 (maxLength)"),
        ({"role": "c"}, '$.role: "c" is not one of the allowed values (enum)'),
        ({"tags": []}, "$.tags: 0 items, fewer than 1 (minItems)"),
        ({"tags": ["a", "b", "c"]}, "$.tags: 3 items, more than 2 (maxItems)"),
        ({"tags": ["a", 2]}, "$.tags[1]: expected string, got integer (type)"),
        ({"note": 3}, "$.note: expected string or null, got integer (type)"),
        ({"kind": "robot"}, '$.kind: "robot" is not "person" (const)'),
        ({"id": 1.5}, "$.id: matches none of the anyOf schemas (anyOf)"),
        ({"extra": 1}, "$: property 'extra' is not allowed (additionalProperties)"),
    ],
)
def test_violation_table(change: dict[str, Any], rule: str | None) -> None:
    assert violation({**GOOD, **change}, PERSON) == rule


def test_a_missing_required_property() -> None:
    value = {"name": "Ann"}
    assert violation(value, PERSON) == "$: required property 'age' is missing (required)"


def test_additional_properties_as_a_schema() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert violation({"a": 1}, schema) is None
    assert violation({"a": "x"}, schema) == "$.a: expected integer, got string (type)"


def test_unsupported_keywords_are_not_checked() -> None:
    assert violation("abc", {"type": "string", "pattern": "^[0-9]+$", "format": "date"}) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"n": 1}', None),
        ("not json", "$: the completion is not valid JSON (type)"),
        (None, "$: the completion has no text (type)"),
        ('{"n": "1"}', "$.n: expected integer, got string (type)"),
    ],
)
def test_completion_violation(text: str | None, rule: str | None) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert completion_violation(text, schema) == rule


# What pydantic writes for a model with a nested model and a list of them.
NESTED: dict[str, Any] = {
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {
        "home": {"$ref": "#/$defs/Address"},
        "past": {"type": "array", "items": {"$ref": "#/$defs/Address"}},
    },
    "required": ["home"],
}


def test_refs_into_defs_are_followed() -> None:
    assert violation({"home": {"city": "Oslo"}, "past": [{"city": "Rome"}]}, NESTED) is None
    assert violation({"home": {"zip": "0150"}}, NESTED) == (
        "$.home: required property 'city' is missing (required)"
    )
    assert violation({"home": {"city": "Oslo"}, "past": [{"city": 7}]}, NESTED) == (
        "$.past[0].city: expected string, got integer (type)"
    )


def test_a_ref_chain_a_root_ref_and_siblings_of_a_ref() -> None:
    chain = {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"type": "integer"}}, "$ref": "#/$defs/A"}
    assert violation(3, chain) is None
    assert violation("3", chain) == "$: expected integer, got string (type)"
    # Keywords beside a $ref apply as well (2019-09 and later).
    with_bound = {"$defs": {"N": {"type": "integer"}}, "$ref": "#/$defs/N", "maximum": 5}
    assert violation(9, with_bound) == "$: 9 is more than 5 (maximum)"


def test_refs_that_cannot_be_resolved_or_loop_are_left_unchecked() -> None:
    assert violation(1, {"$ref": "#/$defs/Missing"}) is None
    assert violation(1, {"$ref": "https://example.com/schema.json"}) is None
    looping = {
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
        "$ref": "#/$defs/A",
    }
    assert violation(1, looping) is None


def test_one_of_needs_exactly_one_match_and_all_of_every_one() -> None:
    one_of = {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 10}]}
    assert violation(3, one_of) is None
    assert violation(12.5, one_of) is None
    assert violation(12, one_of) == "$: matches 2 of the oneOf schemas, not exactly one (oneOf)"
    assert violation("x", one_of) == "$: matches none of the oneOf schemas, not exactly one (oneOf)"
    all_of = {"allOf": [{"type": "integer"}, {"minimum": 10}]}
    assert violation(12, all_of) is None
    assert violation(3, all_of) == "$: 3 is less than 10 (minimum)"


POINTED = {"$defs": {"a/b": {"type": "string"}, "m~n": [{"x": None}, {"y": 2}]}, "type": "object"}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("#", POINTED),
        ("#/type", "object"),
        ("#/$defs/a~1b", {"type": "string"}),
        ("#/$defs/m~0n/1/y", 2),
        # A place that holds null is found: it is not the default.
        ("#/$defs/m~0n/0/x", None),
        ("#/$defs/missing", "default"),
        ("#/$defs/m~0n/2", "default"),
        ("#/$defs/m~0n/x", "default"),
        ("#/type/0", "default"),
    ],
)
def test_resolve_pointer(ref: str, expected: Any) -> None:
    assert resolve_pointer(POINTED, ref, default="default") == expected
