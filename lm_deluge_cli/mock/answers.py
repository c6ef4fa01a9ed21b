"""What the mock model says to a chat request: each answer's text, tool calls and reasoning,
with their token counts. Pure functions of the request; the simulator decides the rest.

An answer is, in this order of precedence: nothing (the ``empty_answer`` fault); tool calls
(`tools`); JSON when the request asks for it (`structured`); Yes or No to a yes/no
question; else the mock's sentence (`wire`), which after a tool result also quotes it.
Reasoning, when asked, comes first and counts against the request's maximum output tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson

from lm_deluge_cli.mock import structured, tools
from lm_deluge_cli.mock.faults import pad_text
from lm_deluge_cli.mock.formats.chat import ChatRequest, Choice
from lm_deluge_cli.mock.wire import (
    WORDS,
    asked_text,
    content_text,
    count_text_tokens,
    cut_text,
    mock_completion,
    reply_text,
    yes_probability,
)

__all__ = ["Faults", "compose", "plain_text", "reasoning_text"]

# How much of a tool result an answer quotes.
_QUOTE_CHARS = 60


@dataclasses.dataclass(frozen=True, slots=True)
class Faults:
    """How a fault bends the answers: pad the first one's text to `pad_to` bytes, break its
    JSON's schema (`violate`), leave every answer `empty`, or break tool-call arguments."""

    pad_to: int = 0
    violate: bool = False
    empty: bool = False
    break_arguments: bool = False


# No fault: the answers as they are.
_UNBENT = Faults()


def compose(
    request: ChatRequest,
    call_id: str,
    *,
    tool_rounds: int,
    states_plan: bool,
    faults: Faults | None = None,
) -> tuple[Choice, ...]:
    """One `Choice` per answer the request asks for, each different (deterministic by its
    index). `call_id` is unique hex for the tool calls' ids; `states_plan` when the format
    says what it will do before calling tools; `tool_rounds` as `tools.rounds`."""
    bent = faults or _UNBENT
    if request.choices == 1:
        # Most requests ask for one answer: no loop for it.
        return (_choice(request, 0, call_id + "00", tool_rounds, states_plan, bent),)
    return tuple(
        [
            _choice(request, index, f"{call_id}{index:02x}", tool_rounds, states_plan, bent)
            for index in range(request.choices)
        ]
    )


def plain_text(
    messages: list[dict[str, Any]], model: str, max_tokens: int | None
) -> tuple[str, int, bool]:
    """(text, tokens, cut short) of the one answer to a plain request's messages, model and
    output cap (`ChatRequest.plain`: one text answer and nothing else): what `compose`
    answers it, JSON only when its instructions ask for it."""
    asked = asked_text(messages).casefold()
    if "json" not in asked and "yes" not in asked:
        # Most requests ask for neither JSON nor yes or no (see `structured.prompted_schema`
        # and `wire.yes_probability`, which look for these words first): the sentence.
        return cut_text(mock_completion(messages, model), max_tokens)
    return reply_text(messages, model, max_tokens, structured.prompted_json_reply(messages))


def _choice(
    request: ChatRequest,
    index: int,
    call_id: str,
    tool_rounds: int,
    states_plan: bool,
    faults: Faults,
) -> Choice:
    budget = request.max_tokens
    reasoning: str | None = None
    spent = 0
    if request.reasoning:
        reasoning, spent, cut = cut_text(reasoning_text(request, index), budget)
        if cut or (budget is not None and spent >= budget):
            # Thinking used every token there was: no answer follows.
            return Choice("", spent, True, reasoning=reasoning, reasoning_tokens=spent)
        budget = None if budget is None else budget - spent
    if faults.empty:
        return Choice("", spent, reasoning=reasoning, reasoning_tokens=spent)
    # A request that offers no tools gets no calls, and most offer none.
    calls = tools.plan_calls(request, tool_rounds, call_id, index) if request.tools else ()
    if calls:
        if faults.break_arguments:
            calls = tuple(
                dataclasses.replace(call, arguments=tools.broken_arguments(call.arguments))
                for call in calls
            )
        plan = tools.tool_plan(calls) if states_plan else ""
        tokens = count_text_tokens(plan) + tools.call_tokens(calls)
        # A call that does not fit is not made: the text answer below is cut instead.
        if budget is None or tokens <= budget:
            return Choice(
                plan, tokens + spent, tool_calls=calls, reasoning=reasoning, reasoning_tokens=spent
            )
    messages, model = request.messages, request.model
    json_text = structured.json_reply(request, violate=faults.violate, variant=index)
    if json_text is None and request.tool_result is not None and yes_probability(messages) is None:
        quote = " ".join(request.tool_result.split())[:_QUOTE_CHARS]
        sentence = mock_completion(messages, model, index) + f' The tool returned: "{quote}"'
        text, tokens, truncated = cut_text(sentence, budget)
    else:
        text, tokens, truncated = reply_text(messages, model, budget, json_text, index)
    if faults.pad_to and index == 0:
        # JSON is padded with spaces, which leave it the same JSON.
        text = pad_text(text, faults.pad_to, spaces=json_text is not None)
        tokens = count_text_tokens(text)
    return Choice(text, tokens + spent, truncated, (), reasoning, spent)


def reasoning_text(request: ChatRequest, index: int = 0) -> str:
    """The model's thinking before answer `index`: deterministic from the conversation."""
    canonical = orjson.dumps(
        {"messages": request.messages, "model": request.model, "index": index},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    digest = hashlib.blake2b(b"reasoning\x00" + canonical, digest_size=8).digest()
    words = ", ".join(WORDS[b % len(WORDS)] for b in digest[:5])
    asked = _last_user_text(request.messages)
    if request.tool_result is not None:
        step = "The tool result is in, so I can answer from it."
    elif request.tools and request.tool_choice.mode != "none":
        step = "A tool may help here."
    else:
        step = "A short, direct answer fits."
    return f'The user asks: "{asked}". Weighing {words}. {step}'


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            text = " ".join(content_text(message.get("content")).split())
            if text:
                return text[:_QUOTE_CHARS]
    return ""
