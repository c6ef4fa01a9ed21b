"""How the mock reads a Chat Completions body (`formats/openai.py` answers it): what is wrong
with it, worded like OpenAI, and what it asks for in neutral terms. Tools, ``tool_choice``
and ``parallel_tool_calls`` are read as the API reference has them; Mistral's and Cohere's
formats read theirs with the same functions.
"""

from __future__ import annotations

from typing import Any

import orjson

from lm_deluge_cli.mock.formats.base import ChatRequest, ToolChoice, ToolSpec
from lm_deluge_cli.mock.formats.chat import neutral_request, tool_spec

__all__ = [
    "MAX_CHOICES",
    "chat_request",
    "function_tools",
    "max_output_tokens",
    "plain_body",
    "plain_request",
    "response_format",
    "tool_choice",
    "validate_request",
]

# The most choices one request may ask for (``n``), as the API refuses more.
MAX_CHOICES = 128

# What a request that says nothing about tools gets: the model may call any, several at once.
_AUTO = ToolChoice()

# The fields of a body that asks for a text answer and nothing else: what the mock reads to
# answer it, and sampling fields it does not read. A body with any other field (tools,
# response_format, n, logprobs …) is read the long way.
_PLAIN_FIELDS = frozenset(
    ("model", "messages", "max_completion_tokens", "max_tokens", "temperature", "top_p")
)
# The roles of its messages (a tool result is read the long way). A tuple: a role may be
# any JSON value, and one that cannot be hashed is simply not among them.
_PLAIN_ROLES = ("user", "system", "developer", "assistant")


def validate_request(request: Any) -> tuple[str, str | None] | None:
    """What is wrong with a chat completions body, worded like OpenAI, and which field."""
    if not isinstance(request, dict):
        return "Invalid request body: expected a JSON object.", None
    if "model" not in request:
        return "you must provide a model parameter", "model"
    if not isinstance(request["model"], str) or not request["model"]:
        return "Invalid type for 'model': expected a non-empty string.", "model"
    messages = request.get("messages")
    if messages is None:
        return "Missing required parameter: 'messages'.", "messages"
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': expected a non-empty array of messages.", "messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"Invalid 'messages[{i}]': expected an object with a 'role'.", f"messages[{i}]"
    for name, low, high in (
        ("max_completion_tokens", 1, None),
        ("max_tokens", 1, None),
        ("top_logprobs", 0, 20),
        ("n", 1, MAX_CHOICES),
    ):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"Invalid '{name}': expected an integer of at least {low}.", name
        if high is not None and value > high:
            return f"Invalid '{name}': expected an integer of at most {high}.", name
    return None


def plain_request(request: Any) -> ChatRequest | None:
    """A valid body that asks for a text answer to text messages and nothing else (the
    fields in `_PLAIN_FIELDS`, each message a role and a string), in neutral terms; None for
    any other body. It is what `chat_request` reads such a body as, without looking for what
    the body does not have: most bodies are like this one."""
    if not isinstance(request, dict) or not _PLAIN_FIELDS.issuperset(request):
        return None
    model, messages = request.get("model"), request.get("messages")
    if not isinstance(model, str) or not model or not isinstance(messages, list) or not messages:
        return None
    for message in messages:
        if (
            not isinstance(message, dict)
            or len(message) != 2
            or message.get("role") not in _PLAIN_ROLES
            or not isinstance(message.get("content"), str)
        ):
            return None
    # The output caps `validate_request` accepts: absent, or whole numbers of at least 1.
    newer, older = request.get("max_completion_tokens"), request.get("max_tokens")
    if newer is not None and (type(newer) is not int or newer < 1):
        return None
    if older is not None and (type(older) is not int or older < 1):
        return None
    return ChatRequest(model, messages, newer or older, request)


def plain_body(body: bytes) -> ChatRequest | None:
    """`plain_request` of a raw body; None for a body that is not JSON either."""
    try:
        return plain_request(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


def max_output_tokens(request: dict[str, Any]) -> int | None:
    """The output cap of a validated body: the newer ``max_completion_tokens`` wins."""
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    return value if isinstance(value, int) else None


def response_format(spec: Any) -> tuple[dict[str, Any] | None, bool]:
    """(schema, JSON mode) of a ``response_format``: ``{"type": "json_schema", "json_schema":
    {"name", "schema", "strict"}}`` or ``{"type": "json_object"}``; (None, False) for text."""
    if not isinstance(spec, dict):
        return None, False
    if spec.get("type") == "json_object":
        return None, True
    inner = spec.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if spec.get("type") == "json_schema" and isinstance(schema, dict):
        return schema, False
    return None, False


def chat_request(request: dict[str, Any], *, reasoning: bool | None = None) -> ChatRequest:
    """A validated chat completions body in neutral terms; its messages are already OpenAI's.
    `reasoning` says whether it asks for reasoning (default: a ``reasoning_effort`` other
    than "none")."""
    output = response_format(request.get("response_format"))
    if reasoning is None:
        reasoning = request.get("reasoning_effort") not in (None, "none")
    choices = request.get("n")
    return neutral_request(
        request["model"],
        request["messages"],
        max_output_tokens(request),
        request,
        output,
        function_tools(request.get("tools")),
        tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls")),
        reasoning=reasoning,
        choices=choices if isinstance(choices, int) else 1,
    )


def function_tools(tools: Any) -> tuple[ToolSpec, ...]:
    """The function tools of a ``tools`` list: ``{"type": "function", "function": {"name",
    "description", "parameters"}}`` (Chat Completions, Mistral and Cohere alike); other
    kinds of tool are left out."""
    specs: list[ToolSpec] = []
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            continue
        spec = tool_spec(
            function.get("name"), function.get("parameters"), function.get("description")
        )
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def tool_choice(choice: Any, parallel: Any = None) -> ToolChoice:
    """A ``tool_choice``: "none", "auto", "required" (Mistral's "any" too), or a named
    function ``{"type": "function", "function": {"name"}}``; ``parallel_tool_calls``."""
    allowed = parallel is not False
    if choice is None and allowed:
        return _AUTO
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            return ToolChoice("required", (name,), allowed)
    if choice == "none":
        return ToolChoice("none", (), allowed)
    if choice in ("required", "any"):
        return ToolChoice("required", (), allowed)
    return ToolChoice("auto", (), allowed)
