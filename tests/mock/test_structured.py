"""The mock's JSON Schema instances: they match (checked with `lm_deluge_cli.schema`), one
prompt gives one value, and `violating_instance` really breaks the schema."""

from __future__ import annotations

import datetime
import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_deluge_cli.mock.formats.base import ChatRequest
from lm_deluge_cli.mock.structured import (
    MAX_DEPTH,
    asks_for_json,
    instance,
    json_reply,
    requested_schema,
    violating_instance,
)
from lm_deluge_cli.schema import completion_violation, violation

PROMPTS = ["Extract the person: Alice Smith, 34, lives in Lyon.", "Bob", "", "Ünïcode wörds ok"]

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "height": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
        "member": {"type": "boolean"},
        "nickname": {"type": ["string", "null"]},
        "role": {"enum": ["admin", "user", "guest"]},
        "country": {"const": "FR"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
    },
    "required": ["name", "age", "role"],
    "additionalProperties": False,
}

SCHEMAS: list[dict[str, Any]] = [
    PERSON,
    {"type": "string"},
    {"type": "integer", "minimum": -5, "maximum": -5},
    {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    {"type": "number", "minimum": 1.5, "maximum": 1.5},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
    {"type": "number", "minimum": 1000000},
    {"type": "integer", "maximum": -1000000},
    {"type": "null"},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
    {"type": "array", "minItems": 5, "items": {"enum": [1, 2, 3]}},
    {"type": "string", "minLength": 50},
    {"type": "string", "maxLength": 2},
    {"type": "object"},
    {"type": "object", "additionalProperties": {"type": "integer"}, "required": ["a", "b"]},
    {"type": "object", "minProperties": 3, "additionalProperties": {"type": "boolean"}},
    {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]},
    {"oneOf": [{"type": "object", "properties": {"k": {"const": 1}}, "required": ["k"]}]},
    {"enum": ["x", 2, None], "type": "integer"},
    {"properties": {"a": {"type": "string"}}, "required": ["a"]},
    {"minimum": 4, "maximum": 9},
    {"type": "array", "items": {"type": "array", "items": {"type": "number", "maximum": 0}}},
    # Gemini's responseSchema spells types in upper case.
    {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_every_instance_matches_its_schema(schema: dict[str, Any], prompt: str) -> None:
    value = instance(schema, prompt)
    assert violation(value, _lower_types(schema)) is None, value


@pytest.mark.parametrize("schema", SCHEMAS)
def test_one_prompt_one_value(schema: dict[str, Any]) -> None:
    assert instance(schema, "same prompt") == instance(schema, "same prompt")


def test_different_prompts_give_different_values() -> None:
    values = {repr(instance(PERSON, f"prompt number {i}")) for i in range(20)}
    assert len(values) >= 18


def test_strings_are_made_of_the_prompts_words() -> None:
    prompt = "zebra quokka narwhal"
    value = instance({"type": "string"}, prompt)
    assert set(value.split()) <= set(prompt.split())


def test_optional_properties_are_filled_and_objects_stay_closed() -> None:
    value = instance(PERSON, "x")
    assert set(value) == set(PERSON["properties"])


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("date", datetime.date.fromisoformat),
        ("date-time", lambda v: datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))),
        ("time", lambda v: datetime.time.fromisoformat(v.replace("Z", "+00:00"))),
        ("email", lambda v: re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+@example\.com", v)),
        ("uri", lambda v: re.fullmatch(r"https://example\.com/\w+/\w+", v)),
        ("uuid", lambda v: uuid.UUID(v).version == 4 or None),
        ("ipv4", lambda v: re.fullmatch(r"192\.0\.2\.\d+", v)),
        ("hostname", lambda v: re.fullmatch(r"[a-z0-9]+\.example\.com", v)),
    ],
)
def test_formats_get_plausible_values(fmt: str, check: Any) -> None:
    for prompt in PROMPTS:
        value = instance({"type": "string", "format": fmt}, prompt)
        assert check(value) is not None, value


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[A-Z]{3}-\d{4}$",
        r"^(draft|final|archived)$",
        r"^[a-z0-9_]+@[a-z]+\.(com|org)$",
        r"\d{2,3}",
        r"^#[0-9a-fA-F]{6}$",
        r"^v\d+\.\d+(\.\d+)?$",
        r"^(?:\+33|0)[1-9](\d{2}){4}$",
    ],
)
def test_simple_patterns_are_matched(pattern: str) -> None:
    for prompt in PROMPTS:
        value = instance({"type": "string", "pattern": pattern}, prompt)
        assert re.search(pattern, value), (pattern, value)


@pytest.mark.parametrize("pattern", [r"^(?!x).+$", r"^[^a]+$", r"(a)\1", r"\Dx"])
def test_a_pattern_too_hard_gets_words(pattern: str) -> None:
    assert instance({"type": "string", "pattern": pattern}, "alpha beta")


@pytest.mark.parametrize(
    ("schema", "step"),
    [
        ({"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 100}, 7),
        ({"type": "number", "multipleOf": 0.25, "exclusiveMinimum": 0, "maximum": 3}, 0.25),
        ({"type": "number", "multipleOf": 0.01}, 0.01),
    ],
)
def test_multiple_of_is_honoured(schema: dict[str, Any], step: float) -> None:
    for prompt in PROMPTS:
        value = instance(schema, prompt)
        assert violation(value, schema) is None
        assert math.isclose(value / step, round(value / step), abs_tol=1e-9), value


def test_draft_4_boolean_exclusive_bounds() -> None:
    schema = {"type": "integer", "minimum": 1, "exclusiveMinimum": True, "maximum": 2}
    assert all(instance(schema, p) == 2 for p in PROMPTS)


REFS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "owner": {"$ref": "#/$defs/person"},
        "tree": {"$ref": "#/definitions/node"},
        "both": {"allOf": [{"$ref": "#/$defs/person"}, {"properties": {"x": {"type": "null"}}}]},
    },
    "required": ["owner", "tree", "both"],
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        }
    },
    "definitions": {
        "node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "next": {"anyOf": [{"$ref": "#/definitions/node"}, {"type": "null"}]},
                "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
            },
            "required": ["value", "next", "children"],
        }
    },
}


def test_refs_are_followed_and_recursion_ends() -> None:
    for prompt in PROMPTS:
        value = instance(REFS, prompt)
        # Our validator does not follow $ref: check against the schema with refs inlined.
        assert violation(value, _inline(REFS, REFS, MAX_DEPTH + 2)) is None, value
        assert set(value["both"]) == {"name", "age", "x"}


def test_an_unknown_ref_is_anything() -> None:
    assert instance({"$ref": "#/$defs/missing"}, "x") is not None


# --- violating instances ----------------------------------------------------------------

BREAKABLE: list[dict[str, Any]] = [
    PERSON,
    {"type": "object", "properties": {"a": {"type": "integer"}}},
    {"type": "object", "properties": {}, "additionalProperties": False},
    {"type": "object"},
    {"type": "string", "enum": ["a", "b"]},
    {"type": "integer"},
    {"type": "number"},
    {"type": "array", "items": {"type": "string"}},
    {"type": "boolean"},
    {"type": "null"},
    {"const": 3},
    {"anyOf": [{"type": "string"}, {"type": "integer"}]},
]


@pytest.mark.parametrize("schema", BREAKABLE)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_violating_instance_breaks_its_schema(schema: dict[str, Any], prompt: str) -> None:
    assert violation(violating_instance(schema, prompt), schema) is not None


def test_a_violating_object_misses_its_first_required_property() -> None:
    broken = violating_instance(PERSON, "x")
    assert violation(broken, PERSON) == "$: required property 'name' is missing (required)"
    assert set(broken) == set(PERSON["properties"]) - {"name"}


def test_a_violating_instance_follows_a_root_ref() -> None:
    schema = {"$ref": "#/$defs/p", "$defs": {"p": PERSON}}
    assert violation(violating_instance(schema, "x"), PERSON) is not None


def test_a_schema_that_takes_anything_cannot_be_broken() -> None:
    assert violating_instance({}, "x") == instance({}, "x")


# --- generated schemas ------------------------------------------------------------------


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    bounds = st.integers(-1000, 1000)
    return st.one_of(
        st.builds(
            lambda lo, span, use: {
                "type": "integer",
                **({"minimum": lo} if use & 1 else {}),
                **({"maximum": lo + span} if use & 2 else {}),
            },
            bounds,
            st.integers(0, 50),
            st.integers(0, 3),
        ),
        st.builds(
            lambda lo, span, exclusive: {
                "type": "number",
                "exclusiveMinimum" if exclusive else "minimum": lo,
                "exclusiveMaximum" if exclusive else "maximum": lo + span,
            },
            st.floats(-1e6, 1e6, allow_nan=False),
            st.floats(0.01, 1e3),
            st.booleans(),
        ),
        st.builds(
            lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span},
            st.integers(0, 30),
            st.integers(0, 30),
        ),
        st.sampled_from([{"type": "boolean"}, {"type": "null"}, {"type": ["string", "null"]}]),
        st.lists(st.one_of(st.text(max_size=5), st.integers()), min_size=1, max_size=4).map(
            lambda values: {"enum": values}
        ),
    )


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text("abcdefgh", min_size=1, max_size=4)
    objects = st.builds(
        lambda props, closed, share: {
            "type": "object",
            "properties": props,
            "required": sorted(props)[: int(len(props) * share)],
            "additionalProperties": not closed,
        },
        st.dictionaries(names, children, max_size=4),
        st.booleans(),
        st.floats(0, 1),
    )
    arrays = st.builds(
        lambda items, lo, span: {
            "type": "array",
            "items": items,
            "minItems": lo,
            "maxItems": lo + span,
        },
        children,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    return st.one_of(objects, arrays)


SCHEMA_STRATEGY = st.recursive(_leaf(), _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(SCHEMA_STRATEGY, st.text(max_size=40))
def test_generated_schemas_get_matching_instances(schema: dict[str, Any], prompt: str) -> None:
    value = instance(schema, prompt)
    assert violation(value, schema) is None, value
    assert instance(schema, prompt) == value


@settings(max_examples=300, deadline=None)
@given(SCHEMA_STRATEGY, st.text(max_size=40))
def test_generated_schemas_get_breaking_instances(schema: dict[str, Any], prompt: str) -> None:
    assert violation(violating_instance(schema, prompt), schema) is not None


# --- what a request asks for ------------------------------------------------------------


def request(system: str | None = None, **fields: Any) -> ChatRequest:
    messages = [{"role": "user", "content": "Extract: Alice, 34"}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return ChatRequest("m", messages, None, **fields)


def test_a_request_schema_is_answered_with_json() -> None:
    text = json_reply(request(schema=PERSON))
    assert text is not None and completion_violation(text, PERSON) is None
    broken = json_reply(request(schema=PERSON), violate=True)
    assert broken is not None and completion_violation(broken, PERSON) is not None


def test_json_mode_gets_an_object_and_breaks_as_a_non_object() -> None:
    text = json_reply(request(json_object=True))
    assert text is not None and completion_violation(text, {"type": "object"}) is None
    broken = json_reply(request(json_object=True), violate=True)
    assert broken is not None and completion_violation(broken, {"type": "object"}) is not None


def test_a_schema_in_the_system_prompt_is_followed() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    system = (
        f"Be brief.\n\nAnswer with one JSON value matching this JSON schema:\n{json.dumps(schema)}"
    )
    asked = requested_schema(request(system))
    assert asked is not None and asked[0]["required"] == ["n"]
    text = json_reply(request(system))
    assert text is not None and completion_violation(text, asked[0]) is None


def test_a_system_prompt_that_asks_for_json_gets_an_object() -> None:
    system = "Answer with one valid JSON object and nothing else, without code fences."
    text = json_reply(request(system))
    assert text is not None and completion_violation(text, {"type": "object"}) is None


@pytest.mark.parametrize("system", [None, "Answer in one word.", "Say what JSON is."])
def test_other_requests_ask_for_no_json(system: str | None) -> None:
    assert not asks_for_json(request(system))
    assert json_reply(request(system)) is None


# --- helpers ----------------------------------------------------------------------------


def _lower_types(schema: Any) -> Any:
    """Gemini's upper-case type names in the lower case our validator reads."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    return {
        key: value.lower() if key == "type" and isinstance(value, str) else _lower_types(value)
        for key, value in schema.items()
    }


def _inline(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    """`schema` with every ``#/…`` reference replaced by its target, `depth` levels deep
    (below that: anything)."""
    if isinstance(schema, list):
        return [_inline(item, root, depth) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        if depth <= 0:
            return {}
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _inline(target, root, depth - 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in _inline(schema["allOf"], root, depth):
            merged = {
                **merged,
                **part,
                "properties": {**merged.get("properties", {}), **part.get("properties", {})},
            }
        return merged
    return {key: _inline(value, root, depth) for key, value in schema.items()}
