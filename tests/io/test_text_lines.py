"""The toolkit's line shapes: {"id", "text"} and rerank's {"id", "query", "documents"}."""

from __future__ import annotations

import orjson
import pytest

from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.text_lines import (
    Document,
    QueryItem,
    TextItem,
    parse_query_line,
    parse_text_line,
)


def _text(obj: object, line: int = 3) -> TextItem | BadLine:
    return parse_text_line(line, orjson.dumps(obj))


def test_a_text_line_keeps_its_id_text_and_metadata() -> None:
    item = _text({"id": "a", "text": "hello", "metadata": {"k": 1}, "other": True})
    assert item == TextItem("a", 3, "hello", {"k": 1})
    assert item.key == '"a"'


def test_the_id_rule_is_runs_custom_id_then_the_line_number() -> None:
    assert _text({"custom_id": 7, "text": "x"}) == TextItem(7, 3, "x")
    assert _text({"text": "x"}, line=9) == TextItem(9, 9, "x")


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"id": "a"}, "'text' must be a non-empty string, got null"),
        ({"id": "a", "text": "   "}, "'text' must be a non-empty string"),
        ({"id": "a", "text": 5}, "'text' must be a non-empty string, got 5"),
        ({"id": 1.5, "text": "x"}, "'id' must be a string or an integer, got 1.5"),
        (["x"], "expected a JSON object, got a list"),
    ],
)
def test_unusable_text_lines_are_bad_lines_naming_the_field(obj: object, problem: str) -> None:
    bad = _text(obj)
    assert isinstance(bad, BadLine)
    assert bad.reason.startswith("line 3: ")
    assert problem in bad.reason


def test_a_text_line_that_is_not_json_names_the_column() -> None:
    bad = parse_text_line(2, b'{"text": "x"')
    assert isinstance(bad, BadLine) and "not valid JSON" in bad.reason


def test_a_text_line_of_bytes_that_are_not_utf8_is_named_by_its_json_error() -> None:
    # Unlike a prompt line (io/parse.py), whose reason names the byte first.
    bad = parse_text_line(2, b'{"text": "\xff"}')
    assert isinstance(bad, BadLine)
    assert bad.reason.startswith("line 2: not valid JSON (")


def test_a_bad_text_line_with_an_id_still_claims_it() -> None:
    bad = _text({"id": "a", "text": ""})
    assert isinstance(bad, BadLine) and bad.id == "a"


def test_a_query_line_takes_strings_and_objects_as_documents() -> None:
    line = {"id": "q", "query": "cats", "documents": ["one", {"id": "d2", "text": "two"}]}
    item = parse_query_line(1, orjson.dumps(line))
    assert item == QueryItem("q", 1, "cats", (Document(0, "one"), Document("d2", "two")))


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"documents": ["a"]}, "'query' must be a non-empty string"),
        ({"query": "q"}, "'documents' must be a non-empty list"),
        ({"query": "q", "documents": []}, "'documents' must be a non-empty list"),
        ({"query": "q", "documents": [3]}, "'documents[0]' must be a string or an object"),
        ({"query": "q", "documents": [{"id": "a"}]}, "'documents[0]' has no text"),
        (
            {"query": "q", "documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
            "'documents[1]' repeats the document id \"a\"",
        ),
    ],
)
def test_unusable_query_lines_are_bad_lines_naming_the_field(obj: object, problem: str) -> None:
    bad = parse_query_line(4, orjson.dumps(obj))
    assert isinstance(bad, BadLine)
    assert bad.reason.startswith("line 4: ")
    assert problem in bad.reason
