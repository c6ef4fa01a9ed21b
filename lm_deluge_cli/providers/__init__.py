"""Provider adapters (one per wire format) and the model registry; the mock provider, a test
double, is a package of its own (`lm_deluge_cli.mock`)."""

from __future__ import annotations

from collections.abc import Callable

from lm_deluge_cli.providers import anthropic_messages, gemini, openai_chat, openai_responses
from lm_deluge_cli.providers.anthropic_messages import AnthropicMessagesAdapter
from lm_deluge_cli.providers.base import Adapter, Endpoint, registered
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.providers.cohere import CohereV2Adapter
from lm_deluge_cli.providers.gemini import GeminiAdapter
from lm_deluge_cli.providers.mistral import MistralAdapter
from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.providers.openai_responses import OpenAIResponsesAdapter
from lm_deluge_cli.types import SamplingParams

__all__ = ["Adapter", "Endpoint", "adapter_for", "max_output_tokens"]

_ADAPTERS: dict[str, Adapter] = {
    "openai_chat": OpenAIChatAdapter(),
    "openai_responses": OpenAIResponsesAdapter(),
    "anthropic_messages": AnthropicMessagesAdapter(),
    "bedrock_anthropic": BedrockAnthropicAdapter(),
    "gemini": GeminiAdapter(),
    "mistral": MistralAdapter(),
    "cohere": CohereV2Adapter(),
}


def adapter_for(wire_format: str) -> Adapter:
    """The adapter that speaks `wire_format`."""
    return registered(_ADAPTERS, wire_format, "adapter")


_MAX_OUTPUT_TOKENS: dict[str, Callable[[Endpoint, SamplingParams], int]] = {
    "openai_chat": openai_chat.max_output_tokens,
    "openai_responses": openai_responses.max_output_tokens,
    "anthropic_messages": anthropic_messages.max_output_tokens,
    "bedrock_anthropic": anthropic_messages.max_output_tokens,
    "gemini": gemini.max_output_tokens,
    # Their max_tokens caps all they generate, as Chat Completions' does.
    "mistral": openai_chat.max_output_tokens,
    "cohere": openai_chat.max_output_tokens,
}


def max_output_tokens(endpoint: Endpoint, sampling: SamplingParams) -> int:
    """The most tokens a request to `endpoint` may generate, thinking budgets included."""
    count = _MAX_OUTPUT_TOKENS.get(endpoint.wire_format, openai_chat.max_output_tokens)
    return count(endpoint, sampling)
