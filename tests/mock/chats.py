"""Helpers for the tests of what the mock answers: a chat request with tools in each
provider's own format, its answer read back as the provider documents it, and the
conversation carried on with the tool results."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator

# Every chat format; "responses" is OpenAI's Responses API.
PROVIDERS = ["openai", "responses", "anthropic", "bedrock", "gemini", "mistral", "cohere"]
PATHS = {
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/anthropic/v1/messages",
    "bedrock": "/bedrock/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke",
    "gemini": "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
    "mistral": "/mistral/v1/chat/completions",
    "cohere": "/cohere/v2/chat",
}
MODELS = {
    "openai": "gpt-4.1-mini",
    "responses": "gpt-4.1-mini",
    "anthropic": "claude-sonnet-4-20250514",
    "bedrock": "anthropic.claude-sonnet-4-20250514-v1:0",
    "gemini": "gemini-2.5-flash",
    "mistral": "mistral-large-latest",
    "cohere": "command-a-03-2025",
}
HEADERS = {
    "anthropic": {"anthropic-version": "2023-06-01"},
    "bedrock": {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAMOCK/20250615/us-east-1/bedrock/"
        "aws4_request, SignedHeaders=host, Signature=" + "0" * 64
    },
}
# Formats whose tool-call arguments are a JSON string (the others send an object).
STRING_ARGUMENTS = ("openai", "responses", "mistral", "cohere")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


WEATHER = Tool(
    "get_weather",
    "The weather in a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
CLOCK = Tool(
    "get_time",
    "The time in a zone.",
    {
        "type": "object",
        "properties": {"zone": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["zone"],
    },
)
TOOLS = (WEATHER, CLOCK)


@dataclass(frozen=True)
class ToolCall:
    """A call as the answer carries it: ``arguments`` is the JSON string where the format
    sends one, else the object."""

    id: str | None
    name: str
    arguments: Any

    def parsed(self) -> Any:
        return orjson.loads(self.arguments) if isinstance(self.arguments, str) else self.arguments


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=lambda: 1000.0)


def send(sim: Simulator, provider: str, body: Mapping[str, Any]) -> tuple[SimResponse, Any]:
    route = match_route(PATHS[provider])
    assert route is not None
    response = sim.handle(route, dict(HEADERS.get(provider, {})), orjson.dumps(body))
    return response, orjson.loads(response.body) if response.body else None


def answer(sim: Simulator, provider: str, body: Mapping[str, Any]) -> Any:
    """The 200 answer's JSON."""
    response, data = send(sim, provider, body)
    assert response.status == 200, data
    return data


def _tools(provider: str, tools: Sequence[Tool]) -> dict[str, Any]:
    if not tools:
        return {}
    if provider in ("openai", "mistral", "cohere"):
        listed: Any = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.schema},
            }
            for t in tools
        ]
    elif provider == "responses":
        listed = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.schema,
            }
            for t in tools
        ]
    elif provider in ("anthropic", "bedrock"):
        listed = [
            {"name": t.name, "description": t.description, "input_schema": t.schema} for t in tools
        ]
    else:
        declarations = [
            {"name": t.name, "description": t.description, "parametersJsonSchema": t.schema}
            for t in tools
        ]
        listed = [{"functionDeclarations": declarations}]
    return {"tools": listed}


def _choice(provider: str, mode: str | None, name: str | None, parallel: bool) -> dict[str, Any]:
    """tool_choice in the provider's words: mode auto, none or required, or a named function."""
    fields: dict[str, Any] = {}
    if provider in ("openai", "mistral", "responses"):
        if name is not None:
            function = {"name": name}
            fields["tool_choice"] = (
                {"type": "function", **function}
                if provider == "responses"
                else {"type": "function", "function": function}
            )
        elif mode is not None:
            fields["tool_choice"] = mode
        if not parallel:
            fields["parallel_tool_calls"] = False
    elif provider in ("anthropic", "bedrock"):
        choice: dict[str, Any] = {}
        if name is not None:
            choice = {"type": "tool", "name": name}
        elif mode is not None:
            choice = {"type": {"auto": "auto", "none": "none", "required": "any"}[mode]}
        if not parallel:
            choice = {"type": "auto", **choice, "disable_parallel_tool_use": True}
        if choice:
            fields["tool_choice"] = choice
    elif provider == "gemini":
        config: dict[str, Any] = {}
        if name is not None:
            config = {"mode": "ANY", "allowedFunctionNames": [name]}
        elif mode is not None:
            config = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[mode]}
        if config:
            fields["toolConfig"] = {"functionCallingConfig": config}
    elif mode in ("none", "required"):  # Cohere: absent is auto; no named function
        fields["tool_choice"] = mode.upper()
    return fields


def request(
    provider: str,
    text: str,
    *,
    tools: Sequence[Tool] = (),
    mode: str | None = None,
    name: str | None = None,
    parallel: bool = True,
    max_tokens: int = 512,
    system: str | None = None,
) -> dict[str, Any]:
    """A one-turn request in `provider`'s format, with tools and a tool choice."""
    extra = {**_tools(provider, tools), **_choice(provider, mode, name, parallel)}
    if provider in ("anthropic", "bedrock"):
        body: dict[str, Any] = {
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}],
        }
        if system:
            body["system"] = system
        if provider == "bedrock":
            return {"anthropic_version": "bedrock-2023-05-31", **body, **extra}
        return {"model": MODELS[provider], **body, **extra}
    if provider == "gemini":
        body = {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"maxOutputTokens": max_tokens},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return {**body, **extra}
    if provider == "responses":
        body = {"model": MODELS[provider], "input": text, "max_output_tokens": max_tokens}
        if system:
            body["instructions"] = system
        return {**body, **extra}
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return {"model": MODELS[provider], "messages": messages, "max_tokens": max_tokens, **extra}


def calls_of(provider: str, data: Any, index: int = 0) -> list[ToolCall]:
    """The tool calls of answer `index`, read from where the provider documents them."""
    if provider in ("openai", "mistral"):
        message = data["choices"][index]["message"]
        return [
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []
        ]
    if provider == "responses":
        return [
            ToolCall(item["call_id"], item["name"], item["arguments"])
            for item in data["output"]
            if item["type"] == "function_call"
        ]
    if provider in ("anthropic", "bedrock"):
        return [
            ToolCall(b["id"], b["name"], b["input"])
            for b in data["content"]
            if b["type"] == "tool_use"
        ]
    if provider == "gemini":
        parts = data["candidates"][index]["content"].get("parts", [])
        return [
            ToolCall(None, p["functionCall"]["name"], p["functionCall"]["args"])
            for p in parts
            if "functionCall" in p
        ]
    return [
        ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in data["message"].get("tool_calls") or []
    ]


def text_of(provider: str, data: Any, index: int = 0) -> str:
    """The answer's text ("" when it has none), thinking left out."""
    if provider in ("openai", "mistral"):
        content = data["choices"][index]["message"]["content"]
        if isinstance(content, list):
            return "".join(c["text"] for c in content if c["type"] == "text")
        return content or ""
    if provider == "responses":
        return "".join(
            part["text"]
            for item in data["output"]
            if item["type"] == "message"
            for part in item["content"]
        )
    if provider in ("anthropic", "bedrock"):
        return "".join(b["text"] for b in data["content"] if b["type"] == "text")
    if provider == "gemini":
        parts = data["candidates"][index]["content"].get("parts", [])
        return "".join(p.get("text", "") for p in parts if not p.get("thought"))
    return "".join(c["text"] for c in data["message"].get("content", []) if c["type"] == "text")


def output_tokens(provider: str, data: Any) -> int:
    if provider in ("openai", "mistral"):
        return int(data["usage"]["completion_tokens"])
    if provider in ("responses", "anthropic", "bedrock"):
        return int(data["usage"]["output_tokens"])
    if provider == "gemini":
        meta = data["usageMetadata"]
        return int(meta["candidatesTokenCount"]) + int(meta.get("thoughtsTokenCount", 0))
    return int(data["usage"]["tokens"]["output_tokens"])


def continued(provider: str, body: Mapping[str, Any], data: Any, result: str) -> dict[str, Any]:
    """`body` carried on: the answer's turn, then `result` as every tool call's result."""
    return _carried(provider, copy.deepcopy(dict(body)), data, result)


def _carried(provider: str, body: dict[str, Any], data: Any, result: str) -> dict[str, Any]:
    calls = calls_of(provider, data)
    if provider in ("openai", "mistral"):
        message = data["choices"][0]["message"]
        turn = {k: message[k] for k in ("role", "content", "tool_calls")}
        results = [{"role": "tool", "tool_call_id": c.id, "content": result} for c in calls]
        body["messages"] += [turn, *results]
    elif provider == "cohere":
        message = data["message"]
        turn = {k: message[k] for k in ("role", "tool_plan", "tool_calls")}
        results = [{"role": "tool", "tool_call_id": c.id, "content": result} for c in calls]
        body["messages"] += [turn, *results]
    elif provider == "responses":
        items = body["input"]
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        outputs = [
            {"type": "function_call_output", "call_id": c.id, "output": result} for c in calls
        ]
        body["input"] = [*items, *data["output"], *outputs]
    elif provider in ("anthropic", "bedrock"):
        blocks = [{"type": "tool_result", "tool_use_id": c.id, "content": result} for c in calls]
        body["messages"] += [
            {"role": "assistant", "content": data["content"]},
            {"role": "user", "content": blocks},
        ]
    else:
        parts = [
            {"functionResponse": {"name": c.name, "response": {"result": result}}} for c in calls
        ]
        body["contents"] += [data["candidates"][0]["content"], {"role": "user", "parts": parts}]
    return body
