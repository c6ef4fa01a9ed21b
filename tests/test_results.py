"""What comes back: the quick constructors make the same values as the classes do."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from lm_deluge_cli.results import (
    Answer,
    Completion,
    ErrorInfo,
    Reasoning,
    Result,
    ToolCall,
    Usage,
    decoded_arguments,
)

ANSWER = Answer(
    "hi",
    (ToolCall("c1", "f", {"x": 1}),),
    Reasoning("thought", ({"format": "anthropic_messages", "block": {}},)),
    "no",
    "tool_calls",
    "tool_use",
    [{"token": "hi", "logprob": -0.1}],
)
BUILT: list[tuple[type[Any], tuple[Any, ...]]] = [
    (Usage, (1, 2, 3, 4, 5, 6)),
    (Answer, ("hi", (), None, None, "stop", "stop", None)),
    (Answer, dataclasses.astuple(ANSWER, tuple_factory=tuple)),
    (Completion, ((ANSWER,), Usage(1, 2))),
    (
        Result,
        (7, 8, "ok", "m", (ANSWER,), Usage(1, 2), 0.5, 1, 0.25, True, False, None, {"m": 1}, {}),
    ),
    (
        Result,
        (None, 3, "error", None, (), None, None, 2, 0.0, False, True, ErrorInfo("x", "y"), 1, {}),
    ),
]


@pytest.mark.parametrize(("cls", "values"), BUILT)
def test_build_makes_the_value_the_class_makes(cls: type[Any], values: tuple[Any, ...]) -> None:
    names = [field.name for field in dataclasses.fields(cls)]
    # Every field, in order: a field added to the class and not to `build` fails here.
    assert list(inspect.signature(cls.build).parameters) == names
    made = cls(*values)
    built = cls.build(*values)
    assert type(built) is cls
    assert built == made and repr(built) == repr(made)
    assert [getattr(built, name) for name in names] == [getattr(made, name) for name in names]
    assert dataclasses.replace(built) == made
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], None)


def test_values_of_build_hash_as_the_class_makes_them() -> None:
    assert hash(Usage.build(1, 2, 3, 4, 5, 6)) == hash(Usage(1, 2, 3, 4, 5, 6))
    plain = ("hi", (), None, None, "stop", None, None)
    assert hash(Answer.build(*plain)) == hash(Answer(*plain))


def test_build_takes_the_class_defaults_as_its_constructor_does() -> None:
    assert Usage.build(3) == Usage(3)
    first, second = Result.build("a", 1, "ok", "m"), Result.build("b", 2, "ok", "m")
    assert first == Result("a", 1, "ok", "m")
    # A field's default factory makes a new value for each, as the constructor does.
    assert first.fields == {} and first.fields is not second.fields
    assert Answer.build(text="hi", finish_reason="stop") == Answer("hi", finish_reason="stop")


@pytest.mark.parametrize(
    ("record", "usage"),
    [
        ({"input_tokens": 3, "output_tokens": 4}, Usage(3, 4)),
        ({}, Usage()),
        ({"input_tokens": 3}, Usage(3, 0)),
        ({"input_tokens": 3.0, "output_tokens": "4"}, Usage(3, 4)),
        ({"input_tokens": None, "output_tokens": 4}, Usage(0, 4)),
        ({"input_tokens": 1, "reasoning_tokens": 2}, Usage(1, 0, 0, 2)),
        ({"output_tokens": 2, "cache_write_tokens": 5}, Usage(0, 2, 0, 0, 5)),
        ({"input_tokens": 9, "output_tokens": 8, "cached_input_tokens": 7}, Usage(9, 8, 7)),
        (Usage(1, 2, 3, 4, 5, 6).to_record(), Usage(1, 2, 3, 4, 5, 6)),
    ],
)
def test_usage_reads_back_from_its_record(record: dict[str, Any], usage: Usage) -> None:
    read = Usage.from_record(record)
    assert read == usage
    assert all(type(getattr(read, field.name)) is int for field in dataclasses.fields(Usage))


def test_usages_add_up() -> None:
    assert Usage(1, 2, 3, 4, 5, 6) + Usage(10, 20, 30, 40, 50, 60) == Usage(11, 22, 33, 44, 55, 66)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ({"city": "Paris"}, {"city": "Paris"}),
        (None, {}),
        ("", {}),
        ("{oops", None),
        ("[1]", None),
        ([1], None),
        (7, None),
    ],
)
def test_decoded_arguments(raw: Any, expected: dict[str, Any] | None) -> None:
    assert decoded_arguments(raw) == expected
