"""`Tool`: a tool a model may call, from a typed Python function, a pydantic model or a JSON
Schema, and what running it on a model's call gives back.

>>> def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
...     '''The weather in a city now.
...
...     Args:
...         city: The city's name.
...     '''
>>> Tool.from_function(get_weather).definition()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import anyio.to_thread
import orjson

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.results import ToolCall
from lm_deluge_cli.tool_use.definitions import ToolDefinitionError, check_tools

__all__ = [
    "Tool",
    "ToolFunction",
    "ToolLike",
    "as_tool",
    "tool_definitions",
    "tool_result_text",
]

# A tool's Python side: called with the call's arguments as keywords, sync or async.
ToolFunction = Callable[..., Any]

_SIMPLE: Mapping[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:?\s*$"
)
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_GOOGLE_PARAM = re.compile(r"^\s+(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_PARAM = re.compile(r"^(\w+)\s*:\s*.*$")


@dataclass(frozen=True)
class Tool:
    """A tool: its name, description and parameters (a JSON Schema object), and the Python
    function that runs it (None for a tool the caller runs itself)."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    function: ToolFunction | None = field(default=None, compare=False)
    # A pydantic model the arguments are validated into before the function is called.
    model: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            check_tools([self._short()], "tool")
        except ToolDefinitionError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_function(
        cls, function: ToolFunction, *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool from a typed function: its name, its docstring's summary as the
        description (Google, NumPy or Sphinx parameter sections describe the parameters),
        and a parameter schema from its signature. Raises ConfigError for a function whose
        parameters cannot be described (``*args``, ``**kwargs``)."""
        summary, described = _docstring(inspect.getdoc(function) or "")
        return cls(
            name=name or function.__name__,
            description=description if description is not None else summary,
            parameters=_signature_schema(function, described),
            function=function,
        )

    @classmethod
    def from_pydantic(
        cls,
        model: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        function: ToolFunction | None = None,
    ) -> Tool:
        """A tool whose arguments are a pydantic model (anything with
        ``model_json_schema()``); `function`, if given, is called with the validated model."""
        schema = dict(model.model_json_schema())
        schema.pop("title", None)
        text = description if description is not None else schema.pop("description", None)
        tool_name = name or _snake(getattr(model, "__name__", "tool"))
        return cls(tool_name, text, schema, function=function, model=model)

    @classmethod
    def from_schema(
        cls,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        function: ToolFunction | None = None,
    ) -> Tool:
        """A tool from a JSON Schema of its parameters (None: it takes none)."""
        return cls(
            name, description, dict(parameters or {"type": "object", "properties": {}}), function
        )

    def definition(self) -> dict[str, Any]:
        """The tool in OpenAI's function-tool shape, as jobs and lines give tools."""
        return check_tools([self._short()], "tool")[0]

    async def call(self, call: ToolCall) -> str:
        """Run the tool on a model's call and give its result as the text a tool message
        carries. Whatever goes wrong (arguments that are not JSON, a function that raises)
        becomes a result saying so, for the model to read: never an exception."""
        if self.function is None:
            return f"Error: the tool {self.name} cannot be run here (it has no function)"
        if call.arguments is None:
            return f"Error: the arguments were not a JSON object: {call.arguments_raw!r}"
        try:
            if self.model is not None:
                bound = functools.partial(self.function, self.model.model_validate(call.arguments))
            else:
                bound = functools.partial(self.function, **call.arguments)
            if inspect.iscoroutinefunction(self.function):
                value = await bound()
            else:
                # A plain function may block (files, the network): off the event loop.
                value = await anyio.to_thread.run_sync(bound)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:  # the model reads what went wrong and may try again
            return f"Error: {type(exc).__name__}: {exc}"
        return tool_result_text(value)

    def _short(self) -> dict[str, Any]:
        short: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            short["description"] = self.description
        return short


# A tool as Python callers give one: a Tool, a function, or a definition in either shape.
ToolLike = Union["Tool", ToolFunction, Mapping[str, Any]]


def as_tool(value: ToolLike) -> Tool:
    """A Tool from a Tool, a typed function, or a definition (run by the caller)."""
    if isinstance(value, Tool):
        return value
    if isinstance(value, Mapping):
        try:
            (definition,) = check_tools([dict(value)], "tool")
        except ToolDefinitionError as exc:
            raise ConfigError(str(exc)) from None
        function = definition["function"]
        return Tool(function["name"], function.get("description"), function["parameters"])
    if callable(value):
        return Tool.from_function(value)
    raise ConfigError(
        f"a tool must be a Tool, a function or a tool definition, got {type(value).__name__}"
    )


def tool_definitions(tools: Sequence[ToolLike]) -> tuple[dict[str, Any], ...]:
    """The definitions (OpenAI's shape) of tools given from Python; ConfigError for a
    name given twice."""
    definitions = [as_tool(tool).definition() for tool in tools]
    try:
        check_tools(definitions, "tools")
    except ToolDefinitionError as exc:
        raise ConfigError(str(exc)) from None
    return tuple(definitions)


def tool_result_text(value: Any) -> str:
    """A tool's result as a tool message's text: strings as they are, the rest as JSON
    (pydantic models and dataclasses by their fields; anything else by its str)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return orjson.dumps(value, default=str).decode()


def _signature_schema(function: ToolFunction, described: Mapping[str, str]) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigError(
                f"tool {function.__name__}: *{parameter.name} cannot be described to a model; "
                "give every parameter a name and a type"
            )
        schema = _type_schema(hints.get(parameter.name, Any))
        if parameter.name in described and "description" not in schema:
            schema["description"] = described[parameter.name]
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif _is_json(parameter.default):
            schema["default"] = parameter.default
        properties[parameter.name] = schema
    schema_out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema_out["required"] = required
    return schema_out


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a type annotation (Any, or an unknown class: any value)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = _type_schema(args[0])
        notes = [note for note in args[1:] if isinstance(note, str)]
        if notes:
            schema["description"] = " ".join(notes)
        return schema
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if origin is typing.Literal:
        values = list(args)
        kinds = {_SIMPLE.get(type(v)) for v in values}
        schema = {"enum": values}
        if len(kinds) == 1 and None not in kinds:
            schema["type"] = kinds.pop()
        return schema
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(arg) for arg in args]
        simple = [o.get("type") for o in options if set(o) == {"type"}]
        if len(simple) == len(options) and all(isinstance(t, str) for t in simple):
            return {"type": simple}
        return {"anyOf": options}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        return {"type": "array", "items": _type_schema(args[0] if args else Any)}
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        inner = _type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": inner} if inner else {"type": "object"}
    if hasattr(hint, "model_json_schema"):
        return dict(hint.model_json_schema())
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        fields = dataclasses.fields(hint)
        inner = typing.get_type_hints(hint)
        return {
            "type": "object",
            "properties": {f.name: _type_schema(inner.get(f.name, Any)) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
        }
    return {}


def _docstring(doc: str) -> tuple[str | None, dict[str, str]]:
    """(summary, parameter descriptions) of a Google, NumPy or Sphinx style docstring."""
    summary: list[str] = []
    described: dict[str, str] = {}
    section: str | None = None
    last: str | None = None
    for line in doc.splitlines():
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            last = sphinx.group(1)
            described[last] = sphinx.group(2).strip()
            section = "sphinx"
            continue
        heading = _SECTION.match(line)
        if heading:
            section, last = heading.group(1).lower(), None
            continue
        if section is None:
            if line.strip().startswith(":"):
                section = "sphinx"
            else:
                summary.append(line)
            continue
        if section not in ("args", "arguments", "parameters", "params"):
            continue
        if set(line.strip()) == {"-"}:
            continue  # a NumPy underline
        google = _GOOGLE_PARAM.match(line)
        numpy = _NUMPY_PARAM.match(line)
        if google:
            last = google.group(1)
            described[last] = google.group(2).strip()
        elif numpy:
            last = numpy.group(1)
            described[last] = ""
        elif last is not None and line.strip():
            described[last] = f"{described[last]} {line.strip()}".strip()
    text = "\n".join(summary).strip()
    return (text or None), {name: text for name, text in described.items() if text}


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
