"""extract: the prompt, the task's parser and records, schema checks, and the Python API."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image as PILImage

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import from_json, to_json
from lm_deluge_cli.io.text_lines import TextItem
from lm_deluge_cli.llm_tools import check_schema, extract, load_schema
from lm_deluge_cli.llm_tools.extract import ExtractTask, extraction_prompt
from lm_deluge_cli.schema import violation
from lm_deluge_cli.types import Prompt

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def finished(task: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The record `task` makes of a record the engine wrote (given in part)."""
    return to_json(task.finish(from_json(record)))


def parse(task: ExtractTask, row: dict[str, Any], line: int = 1) -> Any:
    return task.parser(None, None)(line, orjson.dumps(row))


def test_the_prompt_quotes_the_text_and_carries_the_schema() -> None:
    prompt = extraction_prompt(SCHEMA, document_name="resume", object_name="contact", text="Ann")
    assert prompt.startswith("Extract the contact information from the resume below")
    assert json.dumps(SCHEMA, separators=(",", ":")) in prompt
    assert prompt.endswith('Resume:\n"""\nAnn\n"""')
    attached = extraction_prompt(SCHEMA)
    assert "from the text above" in attached and '"""' not in attached


def test_text_lines_become_one_user_message_with_the_schema_in_sampling() -> None:
    task = ExtractTask(SCHEMA)
    item = parse(task, {"id": "a", "text": "Ann is 31.", "metadata": {"k": 1}})
    assert isinstance(item, TextItem)
    prompt = task.prepare(item)
    assert isinstance(prompt, Prompt)
    assert prompt.sampling == {"json_schema": SCHEMA}
    assert prompt.metadata == {"k": 1}
    [message] = prompt.messages
    assert message["role"] == "user" and "Ann is 31." in message["content"]


@pytest.mark.parametrize(
    ("messages", "expected_last"),
    [
        ([{"role": "user", "content": "Look"}], "Look\n\n"),
        ([{"role": "user", "content": [{"type": "text", "text": "Look"}]}], None),
    ],
)
def test_run_lines_get_the_instructions_on_their_last_user_message(
    messages: list[dict[str, Any]], expected_last: str | None
) -> None:
    task = ExtractTask(SCHEMA)
    item = parse(task, {"id": 1, "messages": messages, "text": "ignored", "temperature": 0.5})
    assert isinstance(item, Prompt)
    prompt = task.prepare(item)
    assert isinstance(prompt, Prompt)
    assert prompt.sampling == {"temperature": 0.5, "json_schema": SCHEMA}
    content = prompt.messages[-1]["content"]
    if expected_last is not None:
        assert content.startswith(expected_last) and "JSON schema" in content
    else:
        assert content[-1]["type"] == "text" and "JSON schema" in content[-1]["text"]
    assert messages[-1]["content"] in ("Look", [{"type": "text", "text": "Look"}])


def test_a_line_that_is_neither_shape_is_a_bad_line() -> None:
    task = ExtractTask(SCHEMA)
    assert isinstance(parse(task, {"id": 1, "text": ""}), BadLine)
    assert isinstance(parse(task, {"id": 1, "other": "x"}), BadLine)
    bad = task.parser(None, None)(3, b"{nope")
    assert isinstance(bad, BadLine) and bad.reason.startswith("line 3:")


def test_finish_adds_data_to_ok_records_and_null_to_errors() -> None:
    task = ExtractTask(SCHEMA)
    ok = finished(task, {"status": "ok", "completion": '{"name": "Ann", "age": 31}'})
    assert ok["data"] == {"name": "Ann", "age": 31}
    error = finished(task, {"status": "error", "completion": None})
    assert error["data"] is None


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ([1], "must be a JSON object"),
        ({"type": "array", "items": {}}, "the top level must be"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "$.properties.a: type"),
        ({"type": "object", "required": "a"}, "required must be a list"),
        ({"type": "object", "properties": {"a": {"enum": []}}}, "enum must be a non-empty"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/B"}}}, "points to nothing"),
        ({"type": "object", "properties": {"a": 3}}, "must be a schema"),
        ({"type": "object", "properties": {"a": {"anyOf": []}}}, "anyOf must be"),
        ({"type": "object", "properties": {"a": {"maxLength": "5"}}}, "maxLength must be a number"),
    ],
)
def test_unusable_schemas_are_refused_naming_the_problem(schema: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match="schema") as caught:
        check_schema(schema)
    assert problem in str(caught.value)


def test_refs_into_the_document_are_fine() -> None:
    check_schema(
        {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
            "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        }
    )


def test_schema_files_that_are_not_json_or_missing_say_so(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{'type': 'object'}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_schema(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="no such file"):
        load_schema(tmp_path / "missing.json")
    (tmp_path / "ok.json").write_text(json.dumps(SCHEMA))
    assert load_schema(tmp_path / "ok.json") == SCHEMA


def test_extract_returns_objects_that_match_the_schema_in_input_order() -> None:
    texts = [f"Person number {i} is {20 + i} years old." for i in range(12)]
    found = extract(texts, SCHEMA, model="mock:fast")
    assert len(found) == 12
    assert all(isinstance(data, dict) and violation(data, SCHEMA) is None for data in found)
    records = extract(texts, SCHEMA, model="mock:fast", return_records=True)
    assert [r["line"] for r in records] == list(range(1, 13))
    assert [r["data"] for r in records] == found


def test_extract_takes_images_and_returns_prompts_without_sending() -> None:
    image = PILImage.new("RGB", (8, 8), (255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    prompts = extract([image, buffer.getvalue(), "text"], SCHEMA, return_prompts=True)
    assert all(isinstance(p, Prompt) for p in prompts)
    parts = prompts[0].messages[-1]["content"]
    assert parts[0]["type"] == "image_url" and parts[-1]["type"] == "text"
    assert extract([image], SCHEMA, model="mock:fast")[0] is not None


def test_a_model_class_gives_instances() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        age: int

    [person] = extract(["Ann is 31."], Person, model="mock:fast")
    assert isinstance(person, Person)


def test_a_duck_typed_model_class_and_bad_arguments() -> None:
    class Duck:
        @staticmethod
        def model_json_schema() -> dict[str, Any]:
            return SCHEMA

    # Without model_validate, the parsed object itself.
    assert isinstance(extract(["Ann"], Duck, model="mock:fast")[0], dict)
    with pytest.raises(ConfigError, match="pydantic model class or a JSON Schema"):
        extract(["x"], "not a schema", model="mock:fast")
    with pytest.raises(ConfigError, match="give model="):
        extract(["x"], SCHEMA)
