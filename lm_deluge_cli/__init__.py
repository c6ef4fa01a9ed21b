"""Run very large batches of prompts through LLM APIs within their rate limits, resumably."""

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
from lm_deluge_cli.retrieval.api import (
    EmbeddingResult,
    RerankResult,
    embed_parallel_async,
    embed_parallel_sync,
    rerank_parallel_async,
    stack_results,
)
from lm_deluge_cli.tool_use.tool import Tool
from lm_deluge_cli.types import (
    Answer,
    Completion,
    ErrorInfo,
    Prompt,
    Reasoning,
    SamplingParams,
    ToolCall,
    Usage,
)

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
