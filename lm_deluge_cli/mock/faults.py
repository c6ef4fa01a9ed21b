"""The faults the mock provider can inject, by name, and the broken bodies some of them send.

A fault is either an HTTP status, answered with the provider's own error for it (``"502"``,
``"408"``, ``"429"`` …), or one of the ways a response goes wrong on the wire:

====================  =======================================================================
``drop``              the connection is closed before any answer
``hang``              the request is never answered
``reset_mid_body``    the headers and half the body arrive, then the connection is reset
``truncated_json``    a 200 whose JSON body stops halfway (its content-length matches)
``html``              a 200 with an HTML page instead of JSON (a proxy's or a captive portal's)
``missing_fields``    a 200 JSON object without the fields that carry the answer
``slow_body``         a correct answer whose body arrives a few bytes at a time over
                      ``slow_body_s`` seconds
``huge_body``         a correct answer whose completion is padded to ``huge_body_bytes``
``schema_violation``  a 200 in the right format whose JSON breaks the schema the request
                      asks for (a required property missing, or a value of the wrong type;
                      see `structured.violating_instance`); a request that asks for no JSON
                      is answered normally
``empty_answer``      a 200 in the right format whose answer holds nothing: no text and no
                      tool call (Chat Completions and Mistral ``content: ""``, Anthropic and
                      Bedrock ``content: []``, Gemini a candidate without parts, Responses
                      no message item, Cohere ``content: []``); reasoning, when asked, is
                      still there. Embeddings and rerank requests are answered normally
``invalid_tool_arguments``
                      a tool call whose arguments are not valid JSON (an object never
                      closed), in the formats that send arguments as a JSON string: Chat
                      Completions, Responses, Mistral and Cohere. An answer without tool
                      calls, and the formats whose arguments are objects (Anthropic,
                      Bedrock, Gemini), are answered normally
====================  =======================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.formats.base import Answer
from lm_deluge_cli.mock.wire import WORDS

__all__ = [
    "BODY_FAULTS",
    "FAULT_RETRY_AFTER_S",
    "WIRE_FAULTS",
    "check_faults",
    "fault_status",
    "pad_text",
    "strip_fields",
    "truncated",
]

# Faults acted out on the connection rather than in the body.
WIRE_FAULTS = ("drop", "hang", "reset_mid_body", "slow_body")
# Faults that send a 200 whose body is wrong or unusual.
BODY_FAULTS = (
    "truncated_json",
    "html",
    "missing_fields",
    "huge_body",
    "schema_violation",
    "empty_answer",
    "invalid_tool_arguments",
)
# How long an injected 429 asks the client to wait (when retry_after is on).
FAULT_RETRY_AFTER_S = 0.5

_KNOWN = "an HTTP status from 400 to 599, or one of " + ", ".join(WIRE_FAULTS + BODY_FAULTS)


def fault_status(name: str) -> int | None:
    """The HTTP status a fault name stands for, or None for a wire or body fault."""
    return int(name) if name.isdigit() else None


def check_faults(faults: Any, field: str = "mock.faults") -> dict[str, float]:
    """``{fault name: fraction of requests}``, checked; raises ConfigError naming the problem."""
    if not isinstance(faults, Mapping):
        raise ConfigError(f"{field} must be a table of fault = rate, got {faults!r}")
    checked: dict[str, float] = {}
    for name, rate in faults.items():
        key = str(name).strip()
        if key.isdigit():
            if not 400 <= int(key) <= 599:
                raise ConfigError(f"{field}: status {key} is not an error status ({_KNOWN})")
            key = str(int(key))
        elif key not in WIRE_FAULTS + BODY_FAULTS:
            raise ConfigError(f"{field}: unknown fault {name!r}; use {_KNOWN}")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ConfigError(f"{field}.{key} must be a number between 0 and 1, got {rate!r}")
        if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
            raise ConfigError(f"{field}.{key} must be between 0 and 1, got {rate!r}")
        if key in checked:
            raise ConfigError(f"{field}: fault {key!r} is given twice")
        checked[key] = float(rate)
    return checked


def truncated(answer: Answer) -> Answer:
    """The answer with its body cut in half, as a proxy that lost the rest would send it."""
    return Answer(answer.status, answer.headers, answer.body[: len(answer.body) // 2])


def strip_fields(answer: Answer, fields: tuple[str, ...]) -> Answer:
    """The answer's JSON object without `fields` (the ones that carry the completion)."""
    payload = orjson.loads(answer.body)
    for name in fields:
        payload.pop(name, None)
    return Answer(answer.status, answer.headers, orjson.dumps(payload))


def pad_text(text: str, size: int, *, spaces: bool = False) -> str:
    """`text` followed by words (or `spaces`, which JSON ignores) until it is `size` bytes
    long (ASCII words: bytes = chars)."""
    missing = size - len(text.encode())
    if missing <= 0:
        return text
    if spaces:
        return text + " " * missing
    filler = " ".join(WORDS) + " "
    return text + (" " + filler * (missing // len(filler) + 1))[:missing]
