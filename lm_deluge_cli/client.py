"""The Python API: `LLMClient` runs prompts through the same engine as `lm-deluge run`."""

from __future__ import annotations

import functools
import os
import random
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from lm_deluge_cli import config
from lm_deluge_cli.cache.base import Cache
from lm_deluge_cli.config import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_PROMPT_CACHE_WARMUP_S,
    CacheConfig,
    Limits,
    ModelEntry,
)
from lm_deluge_cli.config.checks import check_positive_int
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.config.fields import check_warmup
from lm_deluge_cli.conversation import Conversation
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.errors import ConfigError, InvalidValueError, NotRunError
from lm_deluge_cli.io.parse import BadLine, parse_line
from lm_deluge_cli.results import ErrorInfo, Result
from lm_deluge_cli.runner import Engine, chat_engine, run_in_memory
from lm_deluge_cli.tool_use.definitions import ToolDefinitionError, check_tool_choice
from lm_deluge_cli.tool_use.tool import Tool, ToolLike, as_tool, tool_definitions
from lm_deluge_cli.types import Prompt, PromptCache, RequestDefaults, SamplingParams

__all__ = ["NOT_RUN", "AgentResult", "LLMClient", "PromptInput", "Result", "not_run"]

# The error type of a prompt the run stopped before sending.
NOT_RUN = NotRunError.type

# A prompt is a string, a Conversation, a list of OpenAI chat messages, or a dict shaped like
# an input line (whose "messages" may also be a Conversation).
PromptInput = str | Conversation | list[dict[str, Any]] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentResult:
    """One conversation's agent loop: `result` is its final answer (usage and cost summed
    over every round, ``fields["rounds"]`` and ``fields["transcript"]`` as in the record)."""

    result: Result

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The whole conversation as OpenAI chat messages, tool results and the final
        answer included."""
        return list(self.result.fields.get("transcript") or [])

    @property
    def conversation(self) -> Conversation:
        """The whole conversation, to read or to continue."""
        return Conversation.from_openai(self.messages)

    @property
    def rounds(self) -> tuple[Result, ...]:
        """Each round's own result: its answer (tool calls included), usage, cost, cache use."""
        return tuple(self.result.fields.get("rounds") or ())

    @property
    def completion(self) -> str | None:
        """The final answer's text."""
        return self.result.completion

    @property
    def status(self) -> str:
        return self.result.status


class LLMClient:
    """Sends many prompts to one or more models within rate limits.

    >>> client = LLMClient.basic("mock:fast")
    >>> client.process_prompts_sync(["Hello"], return_completions_only=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        models: str | Sequence[str],
        *,
        weights: Sequence[float] | None = None,
        max_requests_per_minute: float | None = config.DEFAULT_MAX_REQUESTS_PER_MINUTE,
        max_tokens_per_minute: float | None = config.DEFAULT_MAX_TOKENS_PER_MINUTE,
        max_concurrent_requests: int = config.DEFAULT_MAX_CONCURRENT_REQUESTS,
        max_attempts: int = config.DEFAULT_MAX_ATTEMPTS,
        request_timeout: float = config.DEFAULT_REQUEST_TIMEOUT_S,
        sampling_params: SamplingParams | None = None,
        retry_other_model: bool = False,
        seed: int | None = None,
        cache: str | os.PathLike[str] | Cache | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | None = None,
        prompt_cache: str | None = None,
        prompt_cache_ttl: str = "5m",
        prompt_cache_warmup: float | None = None,
        dedupe: bool = True,
    ) -> None:
        names = [models] if isinstance(models, str) else list(models)
        if not names:
            raise ConfigError("LLMClient needs at least one model")
        weights = list(weights) if weights is not None else [1.0] * len(names)
        if len(weights) != len(names):
            raise ConfigError(f"got {len(names)} models but {len(weights)} weights")
        pairs = zip(names, weights, strict=True)
        self.models = tuple(_entry(i, name, weight) for i, (name, weight) in enumerate(pairs))
        # As on the command line, 0 (or None) means no rate limit. Limits checks the rest,
        # with the job file's messages (`max_attempts must be a positive integer, got 0`).
        self.limits = Limits(
            max_requests_per_minute=max_requests_per_minute or None,
            max_tokens_per_minute=max_tokens_per_minute or None,
            max_concurrent_requests=max_concurrent_requests,
            max_attempts=max_attempts,
            request_timeout=request_timeout,
        )
        self.sampling_params = sampling_params or SamplingParams()
        self.retry_other_model = retry_other_model
        self._seed = seed
        # A result cache (a directory, a .sqlite file, leveldb:…, redis://…, memory:), or
        # an open Cache object shared by every call; None: no cache. Identical prompts in
        # one call share one request either way (unless dedupe is False).
        self.cache = CacheConfig.given(cache)
        # Tools (Tool objects, typed functions or definitions) for prompts without their own.
        self.tools = tuple(as_tool(tool) for tool in tools or ())
        self.defaults = _defaults(self.tools, tool_choice)
        self.prompt_cache = _prompt_cache(prompt_cache, prompt_cache_ttl)
        # Seconds a request waits for the first one sharing its cached prefix (0: none).
        if prompt_cache_warmup is None:
            prompt_cache_warmup = DEFAULT_PROMPT_CACHE_WARMUP_S if self.prompt_cache else 0.0
        self.prompt_cache_warmup = check_warmup(prompt_cache_warmup, "prompt_cache_warmup")
        self.dedupe = dedupe

    @classmethod
    def basic(cls, model: str, **kwargs: Any) -> LLMClient:
        """A client for one model with default limits."""
        return cls(model, **kwargs)

    async def process_prompts_async(
        self,
        prompts: Sequence[PromptInput],
        *,
        show_progress: bool = False,
        return_completions_only: bool = False,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | None = None,
    ) -> list[Any]:
        """Results in the order of `prompts` (completions only: None for failures).

        `tools` and `tool_choice` replace the client's for this call; a prompt given as a
        dict with its own ``tools`` keeps them. Each result's `tool_calls` are ToolCall
        objects (``id``, ``name``, ``arguments``).
        """
        defaults = self.defaults
        if tools is not None or tool_choice is not None:
            chosen = tuple(as_tool(t) for t in tools) if tools is not None else self.tools
            defaults = _defaults(chosen, tool_choice)
        results = await self._run_records(
            _prompts(prompts), len(prompts), show_progress=show_progress, defaults=defaults
        )
        final = [r if r is not None else not_run(i) for i, r in enumerate(results)]
        if return_completions_only:
            return [None if r.is_error else r.completion for r in final]
        return final

    async def _run_records(
        self,
        source: AsyncIterable[Prompt | BadLine | Answered],
        count: int,
        *,
        show_progress: bool = False,
        finish: Callable[[Result], Result] | None = None,
        defaults: RequestDefaults | None = None,
        agent: tuple[Sequence[Tool], int] | None = None,
    ) -> list[Result | None]:
        """Run `count` items (lines 1 to `count`) through the engine with this client's
        models, limits and cache; each line's result by position, None if it never ran.
        Shared with the toolkit (`lm_deluge_cli.llm_tools`), whose `finish` completes each.
        With `agent` (tools and the most rounds) each item is a conversation run as an agent
        loop (`engine.agent_loop`)."""
        endpoints = resolve_endpoints(self.models)

        async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
            requester = await build_requester(
                self.models,
                endpoints,
                self.limits,
                self.sampling_params,
                retry_other_model=self.retry_other_model,
                stats=stats,
                stack=stack,
                rng=random.Random(self._seed) if self._seed is not None else None,
                reuse=reuse,
                defaults=defaults if defaults is not None else self.defaults,
                prompt_cache=self.prompt_cache,
                dedupe=self.dedupe,
                warmup_s=self.prompt_cache_warmup,
            )
            return chat_engine(requester, stats, finish=finish, agent=agent)

        return await run_in_memory(
            self.cache, aiter(source), count, build, show_progress=show_progress
        )

    async def run_agent_loops_async(
        self,
        conversations: Sequence[PromptInput],
        *,
        tools: Sequence[ToolLike] | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        tool_choice: str | None = None,
        show_progress: bool = False,
    ) -> list[AgentResult]:
        """Run each conversation as an agent loop: its tool calls are answered with the given
        tools' Python functions (sync or async; a function that raises answers with the
        error) and the next round is sent, every conversation concurrently under this
        client's one limiter, until the model stops calling tools or `max_rounds` rounds
        were sent. Results in input order; each has the final answer, the whole
        conversation and every round's usage and cost (`AgentResult`).

        With a cache (``LLMClient(cache=…)``) every round's answer is stored, so a run
        started again after a crash pays only for rounds it had not been answered.
        """
        check_positive_int(max_rounds, "max_rounds")
        chosen = tuple(as_tool(t) for t in tools) if tools is not None else self.tools
        if not chosen:
            raise ConfigError(
                "run_agent_loops needs tools: give tools=[...] or LLMClient(tools=...)"
            )
        defaults = _defaults(chosen, tool_choice)
        results = await self._run_records(
            _prompts(conversations),
            len(conversations),
            show_progress=show_progress,
            defaults=defaults,
            agent=(chosen, max_rounds),
        )
        return [AgentResult(r if r is not None else not_run(i)) for i, r in enumerate(results)]

    def run_agent_loops(
        self,
        conversations: Sequence[PromptInput],
        *,
        tools: Sequence[ToolLike] | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        tool_choice: str | None = None,
        show_progress: bool = False,
    ) -> list[AgentResult]:
        """`run_agent_loops_async` for code that is not async."""
        return anyio.run(
            functools.partial(
                self.run_agent_loops_async,
                conversations,
                tools=tools,
                max_rounds=max_rounds,
                tool_choice=tool_choice,
                show_progress=show_progress,
            )
        )

    def process_prompts_sync(
        self,
        prompts: Sequence[PromptInput],
        *,
        show_progress: bool = False,
        return_completions_only: bool = False,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | None = None,
    ) -> list[Any]:
        """`process_prompts_async` for code that is not async."""
        return anyio.run(
            functools.partial(
                self.process_prompts_async,
                prompts,
                show_progress=show_progress,
                return_completions_only=return_completions_only,
                tools=tools,
                tool_choice=tool_choice,
            )
        )


async def _prompts(prompts: Sequence[PromptInput]) -> AsyncIterator[Prompt | BadLine]:
    for index, item in enumerate(prompts):
        line = index + 1
        if isinstance(item, str):
            yield Prompt(id=index, line=line, messages=[{"role": "user", "content": item}])
            continue
        raw: dict[str, Any] = {"messages": item} if isinstance(item, list | Conversation) else item
        conversation = raw.get("messages")
        if isinstance(conversation, Conversation):
            try:
                raw = {**raw, "messages": conversation.to_openai()}
            except ValueError as exc:  # an image that cannot be decoded, a misbuilt turn
                own_id = raw.get("id", index)
                yield BadLine(line, f"line {line}: {exc}", own_id if _is_id(own_id) else None)
                continue
        # The position is the default id; a dict's own "id" wins.
        yield parse_line(line, orjson.dumps({"id": index, **raw}))


def _entry(index: int, name: str, weight: float) -> ModelEntry:
    """The model entry for ``models[index]``; a name or weight it refuses is named so."""
    try:
        return ModelEntry(name=name, weight=weight)
    except InvalidValueError as exc:
        raise exc.at(f"models[{index}]" if exc.field == "name" else f"weights[{index}]") from None


def _defaults(tools: Sequence[Tool], tool_choice: str | None) -> RequestDefaults:
    """The request fields for prompts without their own: these tools, this choice."""
    definitions = tool_definitions(tools)
    choice = None
    if tool_choice is not None:
        names = [d["function"]["name"] for d in definitions]
        try:
            choice = check_tool_choice(tool_choice, names, "tool_choice")
        except ToolDefinitionError as exc:
            raise ConfigError(str(exc)) from None
    return RequestDefaults(definitions, choice)


def _prompt_cache(placement: str | None, ttl: str) -> PromptCache | None:
    if placement is None or placement == "none":
        return None
    try:
        return PromptCache(placement, ttl)
    except ValueError as exc:
        raise ConfigError(f"prompt_cache {exc}") from None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def not_run(index: int) -> Result:
    """The result of the prompt at `index` when the run stopped before sending it."""
    return Result(
        id=index,
        line=index + 1,
        status="error",
        model=None,
        error=ErrorInfo(NOT_RUN, "the run stopped before this prompt was sent"),
    )
