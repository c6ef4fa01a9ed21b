"""Tool: schemas from typed functions, pydantic models and JSON Schema; running a call."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
import pydantic
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.results import ToolCall
from lm_deluge_cli.tool_use.tool import Tool, tool_result_text

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int | None = None) -> str:
    """The weather in a city now.

    Args:
        city: The city's name,
            as people write it.
        unit: Celsius or Fahrenheit.
    """
    return f"{city}: 21 {unit}"


def test_a_typed_function_gives_name_description_and_parameters() -> None:
    tool = Tool.from_function(get_weather)
    assert tool.name == "get_weather"
    assert tool.description == "The weather in a city now."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name, as people write it."},
            "unit": {
                "enum": ["C", "F"],
                "type": "string",
                "description": "Celsius or Fahrenheit.",
                "default": "C",
            },
            "days": {"type": ["integer", "null"], "default": None},
        },
        "required": ["city"],
    }
    assert tool.definition() == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city now.",
            "parameters": tool.parameters,
        },
    }


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: float
    y: float = 0.0


def test_containers_enums_dataclasses_and_annotations() -> None:
    def plot(
        points: list[Point],
        labels: dict[str, str],
        colour: Colour,
        note: Annotated[str, "Shown under the plot."],
        anything: Any = None,
    ) -> None:
        """Plot points.

        :param points: Where.
        """

    props = Tool.from_function(plot).parameters["properties"]
    assert props["points"] == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x"],
        },
        "description": "Where.",
    }
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert props["colour"] == {"enum": ["red", "blue"]}
    assert props["note"] == {"type": "string", "description": "Shown under the plot."}
    assert props["anything"] == {"default": None}


def test_numpy_docstrings_describe_parameters() -> None:
    def search(query: str) -> list[str]:
        """Search the index.

        Parameters
        ----------
        query : str
            What to look for.
        """
        return []

    tool = Tool.from_function(search)
    assert tool.description == "Search the index."
    assert tool.parameters["properties"]["query"]["description"] == "What to look for."


def test_star_args_cannot_be_described() -> None:
    def anything(*args: Any) -> None: ...

    with pytest.raises(ConfigError, match=r"\*args cannot be described"):
        Tool.from_function(anything)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="name must be 1 to 64"):
        Tool.from_schema("not allowed", {"type": "object"})


class Order(pydantic.BaseModel):
    """Place an order."""

    item: str
    quantity: int = 1


def test_a_pydantic_model_gives_the_parameters_and_validates_the_call() -> None:
    seen: list[Order] = []

    def place(order: Order) -> str:
        seen.append(order)
        return "placed"

    tool = Tool.from_pydantic(Order, function=place)
    assert tool.name == "order"
    assert tool.description == "Place an order."
    assert tool.parameters["required"] == ["item"]

    async def go() -> str:
        return await tool.call(ToolCall("c1", "order", {"item": "tea", "quantity": 2}))

    assert anyio.run(go) == "placed"
    assert seen == [Order(item="tea", quantity=2)]


async def test_calls_run_sync_and_async_functions() -> None:
    async def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    assert await Tool.from_function(add).call(ToolCall("c", "add", {"a": 1, "b": 2})) == (
        '{"sum":3}'
    )
    weather = Tool.from_function(get_weather)
    assert await weather.call(ToolCall("c", "get_weather", {"city": "Oslo"})) == "Oslo: 21 C"


async def test_what_goes_wrong_is_a_result_the_model_reads() -> None:
    def broken(x: int) -> int:
        raise ValueError("no such x")

    tool = Tool.from_function(broken)
    assert await tool.call(ToolCall("c", "broken", {"x": 1})) == "Error: ValueError: no such x"
    missing = await tool.call(ToolCall("c", "broken", {}))
    assert missing.startswith("Error: TypeError:")
    raw = await tool.call(ToolCall("c", "broken", None, '{"x": '))
    assert raw == "Error: the arguments were not a JSON object: '{\"x\": '"
    schema_only = Tool.from_schema("lookup")
    assert "has no function" in await schema_only.call(ToolCall("c", "lookup", {}))


def test_results_become_text() -> None:
    assert tool_result_text("as is") == "as is"
    assert tool_result_text({"a": [1, 2]}) == '{"a":[1,2]}'
    assert tool_result_text(Point(1.0, 2.0)) == '{"x":1.0,"y":2.0}'
    assert tool_result_text(Order(item="tea")) == '{"item":"tea","quantity":1}'
