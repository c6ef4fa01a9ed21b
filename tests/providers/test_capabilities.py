"""supported_sampling: what a known model does not take is left out and named; unknown
models get everything."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.capabilities import (
    is_known,
    supported_sampling,
    unsupported_message,
)
from lm_deluge_cli.providers.registry import ModelInfo, load_registry
from lm_deluge_cli.types import SamplingParams

PLAIN: dict[str, Any] = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def endpoint(provider: str = "openai", compatible: bool = False, **flags: Any) -> Endpoint:
    registry = load_registry()
    model = ModelInfo(id=f"{provider}:m", provider=provider, wire_id="m", **flags)
    return Endpoint(
        name=model.id,
        model=model,
        provider=registry.provider(provider),
        base_url="https://example.test",
        compatible=compatible,
    )


ASKED = SamplingParams(
    temperature=0.5,
    top_p=0.9,
    json_mode=True,
    reasoning_effort="high",
    logprobs=True,
    top_logprobs=3,
    stop=("END",),
)


@pytest.mark.parametrize(
    ("target", "dropped"),
    [
        # Unknown provider:model names pass everything through.
        (endpoint(), []),
        (
            endpoint(**PLAIN),
            ["logprobs", "top_logprobs", "reasoning_effort", "json_mode"],
        ),
        (
            endpoint(supports_json=True, supports_logprobs=True, reasoning=True),
            ["stop", "temperature", "top_p"],
        ),
        # An OpenAI-compatible server behind a known reasoning model still takes stop.
        (
            endpoint(compatible=True, supports_json=True, supports_logprobs=True, reasoning=True),
            [],
        ),
        # Claude gets JSON through its system prompt, whatever the flags say.
        (endpoint("anthropic", reasoning=True, **PLAIN), ["logprobs", "top_logprobs"]),
        (
            endpoint("anthropic", reasoning=True, adaptive_thinking=True, **PLAIN),
            ["logprobs", "top_logprobs", "temperature", "top_p"],
        ),
        (
            endpoint("mistral", supports_json_schema=True, **PLAIN),
            ["logprobs", "top_logprobs", "reasoning_effort"],
        ),
    ],
)
def test_what_is_left_out(target: Endpoint, dropped: list[str]) -> None:
    kept, names = supported_sampling(target, ASKED)
    assert names == dropped
    defaults = SamplingParams()
    for name in dropped:
        assert getattr(kept, name) == getattr(defaults, name)
    for name in {"temperature", "top_p", "json_mode", "stop", "logprobs"} - set(dropped):
        assert getattr(kept, name) == getattr(ASKED, name)


def test_defaults_are_never_left_out() -> None:
    sampling = SamplingParams()
    assert supported_sampling(endpoint(reasoning=True, **PLAIN), sampling) == (sampling, [])


def test_registry_models_are_known_and_provider_model_names_are_not() -> None:
    registry = load_registry()
    assert is_known(registry.lookup("openai:gpt-4.1-mini"))
    assert not is_known(registry.lookup("openai:some-future-model"))


def test_the_warning_names_model_and_parameter() -> None:
    target = endpoint(**PLAIN)
    assert unsupported_message(target, "logprobs") == (
        "openai:m does not support logprobs; leaving it out"
    )


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        (endpoint(**PLAIN), False),
        (endpoint(supports_json_schema=True, **PLAIN), True),
        # Claude answers a json_schema through a forced tool, whatever the flags say.
        (endpoint("anthropic", **PLAIN), True),
        (endpoint(), True),  # unknown: passed through
    ],
)
def test_json_schema_needs_structured_outputs(target: Endpoint, kept: bool) -> None:
    schema = {"type": "object"}
    result, dropped = supported_sampling(target, SamplingParams(json_schema=schema))
    assert (result.json_schema is not None) == kept
    assert dropped == ([] if kept else ["json_schema"])
