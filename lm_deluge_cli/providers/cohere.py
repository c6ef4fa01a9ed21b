"""Cohere Chat API v2 (`POST {base_url}/v2/chat`).

An answer's text is its ``text`` content blocks, after the ``tool_plan`` when the model wrote
one beside its tool calls; ``thinking`` blocks are its reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import (
    APIStatusError,
    InternalServerError,
    QuotaExhaustedError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_retry_after
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.parts import (
    bearer_json_request,
    count,
    function_tools,
    header_int,
    image_url,
    named_function,
    read_body,
    text_of,
    tool_call,
    unsupported,
)
from lm_deluge_cli.results import Answer, Completion, Reasoning, Usage
from lm_deluge_cli.types import (
    HttpRequest,
    HttpResponse,
    Message,
    Prompt,
    RateLimitInfo,
    SamplingParams,
)

__all__ = ["CohereV2Adapter"]

# Cohere's documented range for p; OpenAI's top_p runs to 1.0, which Cohere rejects.
P_MIN = 0.01
P_MAX = 0.99
# finish_reason (upper-cased: the SDKs spell it in lower case too) → ours. ERROR and
# ERROR_LIMIT are retried instead. TIMEOUT cut the generation short, by time rather than
# tokens: what it wrote is kept, as with MAX_TOKENS.
_FINISH_REASONS: Mapping[str, str] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "CONTENT_BLOCKED": "content_filter",
    "TIMEOUT": "other",
}
# The plan and the text after it are paragraphs of their own; so are thinking blocks.
_SEPARATOR = "\n\n"
_TOOL_CHOICE: Mapping[str, str] = {"required": "REQUIRED", "none": "NONE"}


class CohereV2Adapter:
    """Builds Cohere v2 chat requests and reads their responses."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        """The v2 chat request for one prompt.

        Fields of an OpenAI Batch API line that Cohere has (tools, seed, …) go under
        Cohere's names; OpenAI-only ones (user, store, logit_bias, …) are left out.
        """
        extra = prompt.extra_body
        body: dict[str, Any] = {
            "model": endpoint.model.wire_id,
            "messages": [_message(message) for message in prompt.messages],
            "stream": False,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "p": min(max(sampling.top_p, P_MIN), P_MAX),
        }
        schema = sampling.json_schema
        if schema is not None:
            body["response_format"] = {"type": "json_object", "json_schema": schema}
        elif sampling.json_mode:
            body["response_format"] = {"type": "json_object"}
        if sampling.stop:
            body["stop_sequences"] = list(sampling.stop)
        if sampling.logprobs:
            body["logprobs"] = True  # Cohere returns the chosen tokens only, no alternatives
        if endpoint.model.reasoning and sampling.reasoning_effort is not None:
            # Cohere's thinking is on or off; its compatibility API maps "none" to off and
            # "high" to on, so only our lowest effort turns it off.
            kind = "disabled" if sampling.reasoning_effort == "minimal" else "enabled"
            body["thinking"] = {"type": kind}
        body.update(_extra_fields(extra))
        return bearer_json_request(endpoint, "/v2/chat", body, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else."""
        what = "Cohere chat response"
        completion = read_body(endpoint, response, what, self.status_error, _completion)
        reason = (completion.answers[0].provider_finish_reason or "").upper()
        if reason in ("ERROR", "ERROR_LIMIT"):
            # "The generation failed due to an internal error": worth another attempt.
            raise InternalServerError(
                f"{response.status}: Cohere reported finish_reason {reason}",
                status_code=response.status,
                code=reason,
            )
        return completion

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """The per-minute call budget Cohere reports for trial keys (production keys: none)."""
        return RateLimitInfo(
            limit_requests=header_int(headers.get("x-trial-endpoint-call-limit")),
            remaining_requests=header_int(headers.get("x-trial-endpoint-call-remaining")),
        )

    def status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        message, code = error_text(response.body, endpoint.api_key)
        # 402: the account's billing limit is reached.
        cls = QuotaExhaustedError if response.status == 402 else status_error_class(response.status)
        return cls(
            f"{response.status}: {message}",
            status_code=response.status,
            retry_after=parse_retry_after(response.headers),
            code=code,
        )


def _completion(data: Any) -> Completion:
    return Completion((_answer(data),), _usage(data.get("usage")))


def _message(message: Message) -> dict[str, Any]:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        # Cohere has no developer role; OpenAI treats developer messages as system ones.
        return {"role": "system", "content": text_of(content, str(role))}
    if role == "user":
        return {"role": "user", "content": _user_content(content)}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        calls = message.get("tool_calls")
        if content:
            # Text beside tool calls is the model's plan; Cohere keeps that in tool_plan.
            out["tool_plan" if calls else "content"] = text_of(content, "assistant")
        if calls:
            out["tool_calls"] = [_tool_call(call) for call in calls]
        return out
    if role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.get("tool_call_id"),
            "content": text_of(content, "tool"),
        }
    raise unsupported(f"Cohere has no equivalent of the {role!r} role")


def _user_content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise unsupported("user message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            # Cohere takes the same shape: an https URL or a base64 data URI.
            url, detail = image_url(part)
            image: dict[str, Any] = {"url": url}
            if detail is not None:
                image["detail"] = detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise unsupported(f"Cohere cannot take a {kind!r} content part")
    return parts


def _tool_call(call: Any) -> dict[str, Any]:
    function = named_function(call)
    if function is None:
        raise unsupported("an assistant tool call needs function.name")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):  # Cohere wants a JSON string, as OpenAI sends it
        arguments = orjson.dumps(arguments or {}).decode()
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }


def _extra_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an OpenAI Batch API line that Cohere has, under Cohere's names."""
    fields: dict[str, Any] = {}
    if extra.get("tools"):
        tools = function_tools(extra["tools"], "Cohere")
        fields["tools"] = [{"type": "function", "function": tool} for tool in tools]
    choice = extra.get("tool_choice")
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        fields["tool_choice"] = _TOOL_CHOICE[choice]
    elif choice not in (None, "auto"):
        function = named_function(choice)
        if function is not None:
            raise unsupported(
                f"Cohere cannot force a call of one function (tool_choice names "
                f"{function['name']!r}); use tool_choice 'required' to force some tool call"
            )
        raise unsupported(
            f"Cohere cannot express tool_choice {choice!r}: it takes 'auto', 'required' or 'none'"
        )
    for name in ("seed", "frequency_penalty", "presence_penalty"):
        if extra.get(name) is not None:
            fields[name] = extra[name]
    return fields


def _answer(data: Mapping[str, Any]) -> Answer:
    """The response's message: text, tool calls, thinking, finish reason and logprobs.

    The tool_plan ("I will look up the weather in Toronto.") is text: the model writes it to
    whoever reads the answer, as OpenAI's and Anthropic's models write text beside their
    tool calls, and an assistant message's text beside tool calls is sent back as Cohere's
    tool_plan. Thinking, which reasoning models write for themselves, is the reasoning.
    Citations point into the text blocks, which are joined as they are, nothing inserted.
    """
    message = data["message"]
    texts, thoughts = _content(message.get("content"))
    text = "".join(texts) if texts else None
    plan = message.get("tool_plan")
    if plan is not None and not isinstance(plan, str):
        raise TypeError("message.tool_plan is not a string")
    if plan:
        text = plan + _SEPARATOR + text if text else plan
    calls = tuple(
        tool_call(call["id"], call["function"]["name"], call["function"].get("arguments"))
        for call in message.get("tool_calls") or ()
    )
    logprobs = data.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, list):
        raise TypeError("logprobs is not a list")
    own = data.get("finish_reason")
    if own is not None and not isinstance(own, str):
        raise TypeError("finish_reason is not a string")
    return Answer(
        text=text,
        tool_calls=calls,
        reasoning=Reasoning(_SEPARATOR.join(thoughts)) if thoughts else None,
        finish_reason=_FINISH_REASONS.get(own.upper(), "other") if own else None,
        provider_finish_reason=own or None,
        logprobs=logprobs,
    )


def _content(content: Any) -> tuple[list[str], list[str]]:
    """(texts, thoughts) of the message's content blocks: reasoning models put "thinking"
    blocks before the answer's "text" blocks."""
    if content is None:
        return [], []
    if not isinstance(content, list):
        raise TypeError("message.content is not a list")
    texts: list[str] = []
    thoughts: list[str] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise TypeError("a text block's text is not a string")
            texts.append(block["text"])
        elif kind == "thinking":
            if not isinstance(block.get("thinking"), str):
                raise TypeError("a thinking block's thinking is not a string")
            if block["thinking"]:
                thoughts.append(block["thinking"])
    return texts, thoughts


def _usage(raw: Any) -> Usage:
    """Billed units (what the call costs) where given, else the tokens the model processed.

    The two differ: the input Cohere counts in ``tokens`` includes its own preamble.
    """
    if raw is None:
        return Usage()
    billed = raw.get("billed_units") or {}
    tokens = raw.get("tokens") or {}

    def pick(name: str) -> int:
        value = billed.get(name)
        return count(value if value is not None else tokens.get(name))

    input_tokens = pick("input_tokens")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=pick("output_tokens"),
        cached_input_tokens=min(count(raw.get("cached_tokens")), input_tokens),
    )
