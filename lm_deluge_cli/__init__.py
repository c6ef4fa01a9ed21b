"""Run very large batches of prompts through LLM APIs within their rate limits, resumably."""

from lm_deluge_cli.client import LLMClient, PromptInput, Result
from lm_deluge_cli.config import Job, JobOverrides, Limits, ModelEntry, load_job
from lm_deluge_cli.conversation import Conversation, Message
from lm_deluge_cli.errors import (
    APIError,
    ConfigError,
    FatalProviderError,
    LMDelugeError,
    UsageError,
)
from lm_deluge_cli.retrieval.api import (
    EmbeddingResult,
    RerankResult,
    embed_parallel_async,
    embed_parallel_sync,
    rerank_parallel_async,
    stack_results,
)
from lm_deluge_cli.types import Completion, Prompt, SamplingParams, Usage

__all__ = [
    "APIError",
    "Completion",
    "ConfigError",
    "Conversation",
    "EmbeddingResult",
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
    "RerankResult",
    "Result",
    "SamplingParams",
    "Usage",
    "UsageError",
    "embed_parallel_async",
    "embed_parallel_sync",
    "load_job",
    "rerank_parallel_async",
    "stack_results",
]
