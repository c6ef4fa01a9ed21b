"""Which sampling parameters a model takes: the rest are left out (and named) instead of
being sent into a wall of 400s. Decided from the registry's capability flags and from what
the model's wire format can express."""

from __future__ import annotations

import dataclasses
from typing import Any

from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.registry import ModelInfo
from lm_deluge_cli.types import SamplingParams

__all__ = ["NATIVE_SAMPLES", "is_known", "supported_sampling", "unsupported_message"]

# Wire formats whose API returns several answers to one request (Chat Completions' and
# Mistral's ``n``, Gemini's ``candidateCount``): the input is sent and billed once. Others
# get one request per sample.
NATIVE_SAMPLES = frozenset({"openai_chat", "mistral", "gemini"})

_DEFAULTS = SamplingParams()
# Adapters that get JSON out of any model: json_mode through the system prompt, a
# json_schema through a forced tool.
_PROMPTED_JSON = frozenset({"anthropic_messages", "bedrock_anthropic"})
# OpenAI's own APIs, whose reasoning models take no sampling parameters.
_OPENAI = frozenset({"openai_chat", "openai_responses"})
# Adapters whose API has no stop sequences at all (OpenAI's Responses API).
_NO_STOP = frozenset({"openai_responses"})
_FLAGS = tuple(f.name for f in dataclasses.fields(ModelInfo) if f.type == "bool")


def is_known(model: ModelInfo) -> bool:
    """Whether the registry (or the user's models file) describes the model.

    An unknown ``provider:model`` has neither prices nor flags: nothing is known to be
    unsupported, so every parameter passes through.
    """
    return (
        model.input_per_mtok is not None
        or model.output_per_mtok is not None
        or model.context_window is not None
        or any(getattr(model, flag) for flag in _FLAGS)
    )


def supported_sampling(
    endpoint: Endpoint, sampling: SamplingParams
) -> tuple[SamplingParams, list[str]]:
    """`sampling` without what the model does not take, and the names of what was left out.

    Only parameters asked for are judged (a default is never "left out").
    """
    dropped = _unsupported(endpoint, sampling) if is_known(endpoint.model) else {}
    # A wire format without stop sequences cannot send them, whatever is known of the model.
    if sampling.stop and endpoint.wire_format in _NO_STOP:
        dropped["stop"] = None
    if not dropped:
        return sampling, []
    return dataclasses.replace(sampling, **dropped), list(dropped)


def _unsupported(endpoint: Endpoint, sampling: SamplingParams) -> dict[str, Any]:
    """The parameters asked for that the model's flags say it refuses, each with the value
    it is replaced by."""
    model = endpoint.model
    wire = endpoint.wire_format
    dropped: dict[str, Any] = {}
    if sampling.logprobs and not model.supports_logprobs:
        dropped["logprobs"] = False
    if sampling.top_logprobs is not None and not model.supports_logprobs:
        dropped["top_logprobs"] = None
    if sampling.reasoning_effort is not None and not takes_reasoning_effort(endpoint):
        dropped["reasoning_effort"] = None
    schema_ok = model.supports_json_schema or wire in _PROMPTED_JSON
    if sampling.json_schema is not None and not schema_ok:
        dropped["json_schema"] = None
    takes_json = model.supports_json or model.supports_json_schema or wire in _PROMPTED_JSON
    if sampling.json_mode and not takes_json:
        dropped["json_mode"] = False
    # OpenAI's reasoning models refuse stop, temperature and top_p (other than the defaults);
    # Claude models with adaptive thinking only refuse the latter two.
    openai_reasoning = wire in _OPENAI and model.reasoning and not endpoint.compatible
    if sampling.stop and openai_reasoning:
        dropped["stop"] = None
    if openai_reasoning or model.adaptive_thinking:
        for name in ("temperature", "top_p"):
            if getattr(sampling, name) != getattr(_DEFAULTS, name):
                dropped[name] = getattr(_DEFAULTS, name)
    return dropped


def takes_reasoning_effort(endpoint: Endpoint) -> bool:
    """Whether the model's reasoning can be adjusted: Mistral's Magistral models always reason
    and take no reasoning_effort (only its adjustable models do)."""
    model = endpoint.model
    if endpoint.wire_format == "mistral" and model.wire_id.startswith("magistral"):
        return False
    return model.reasoning


def unsupported_message(endpoint: Endpoint, parameter: str) -> str:
    """The warning for one parameter left out."""
    return f"{endpoint.name} does not support {parameter}; leaving it out"
