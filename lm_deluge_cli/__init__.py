"""Run very large batches of prompts through LLM APIs within their rate limits, resumably.

The names below are loaded when first used (PEP 562), so importing one part of the
package (reading input, say) does not load the engine, every adapter and the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lm_deluge_cli.client import AgentResult, LLMClient, PromptInput, Result
    from lm_deluge_cli.config import Job, JobOverrides, Limits, ModelEntry, load_job
    from lm_deluge_cli.conversation import Conversation, Message
    from lm_deluge_cli.errors import (
        APIError,
        ConfigError,
        FatalProviderError,
        LMDelugeError,
        UsageError,
    )
    from lm_deluge_cli.results import Answer, Completion, ErrorInfo, Reasoning, ToolCall, Usage
    from lm_deluge_cli.retrieval.api import (
        EmbeddingResult,
        RerankResult,
        embed_parallel_async,
        embed_parallel_sync,
        rerank_parallel_async,
        stack_results,
    )
    from lm_deluge_cli.tool_use.tool import Tool
    from lm_deluge_cli.types import Prompt, SamplingParams

# Each public name, and the module it lives in.
_EXPORTS: dict[str, str] = {
    "AgentResult": "lm_deluge_cli.client",
    "LLMClient": "lm_deluge_cli.client",
    "PromptInput": "lm_deluge_cli.client",
    "Result": "lm_deluge_cli.client",
    "Job": "lm_deluge_cli.config",
    "JobOverrides": "lm_deluge_cli.config",
    "Limits": "lm_deluge_cli.config",
    "ModelEntry": "lm_deluge_cli.config",
    "load_job": "lm_deluge_cli.config",
    "Conversation": "lm_deluge_cli.conversation",
    "Message": "lm_deluge_cli.conversation",
    "APIError": "lm_deluge_cli.errors",
    "ConfigError": "lm_deluge_cli.errors",
    "FatalProviderError": "lm_deluge_cli.errors",
    "LMDelugeError": "lm_deluge_cli.errors",
    "UsageError": "lm_deluge_cli.errors",
    "Answer": "lm_deluge_cli.results",
    "Completion": "lm_deluge_cli.results",
    "ErrorInfo": "lm_deluge_cli.results",
    "Reasoning": "lm_deluge_cli.results",
    "ToolCall": "lm_deluge_cli.results",
    "Usage": "lm_deluge_cli.results",
    "EmbeddingResult": "lm_deluge_cli.retrieval.api",
    "RerankResult": "lm_deluge_cli.retrieval.api",
    "embed_parallel_async": "lm_deluge_cli.retrieval.api",
    "embed_parallel_sync": "lm_deluge_cli.retrieval.api",
    "rerank_parallel_async": "lm_deluge_cli.retrieval.api",
    "stack_results": "lm_deluge_cli.retrieval.api",
    "Tool": "lm_deluge_cli.tool_use.tool",
    "Prompt": "lm_deluge_cli.types",
    "SamplingParams": "lm_deluge_cli.types",
}

__all__ = [
    "APIError",
    "AgentResult",
    "Answer",
    "Completion",
    "ConfigError",
    "Conversation",
    "EmbeddingResult",
    "ErrorInfo",
    "FatalProviderError",
    "Job",
    "JobOverrides",
    "LLMClient",
    "LMDelugeError",
    "Limits",
    "Message",
    "ModelEntry",
    "Prompt",
    "PromptInput",
    "Reasoning",
    "RerankResult",
    "Result",
    "SamplingParams",
    "Tool",
    "ToolCall",
    "Usage",
    "UsageError",
    "embed_parallel_async",
    "embed_parallel_sync",
    "load_job",
    "rerank_parallel_async",
    "stack_results",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, found without this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
