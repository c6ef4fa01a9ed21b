"""Run in-memory inputs through a tool's task and the engine, as `run --task` does for a file.

Each input becomes the input line it would be in a file (``{"id": i, …}``, serialised), so
the Python functions and the commands parse, prompt and record alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from lm_deluge_cli.client import NOT_RUN, LLMClient, not_run
from lm_deluge_cli.engine.task import Answered, Task
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt

__all__ = ["NOT_RUN", "client_for", "prompts_of", "run_task"]


def client_for(
    model: str | Sequence[str] | None, client: LLMClient | None, options: dict[str, Any]
) -> LLMClient:
    """The client a tool function uses: the one given, else one for `model` built with the
    remaining keyword arguments (LLMClient's: limits, sampling_params, cache …)."""
    if client is not None:
        if model is not None or options:
            raise ConfigError("give either client= or model= (with LLMClient options), not both")
        return client
    if model is None:
        raise ConfigError('give model= (e.g. model="openai:gpt-4.1-mini") or client=')
    return LLMClient(model, **options)


def prompts_of(task: Task, lines: Sequence[dict[str, Any]]) -> list[Prompt | Answered | BadLine]:
    """What the task makes of each line, without sending anything (``return_prompts``)."""
    parse = task.parser(None, None)
    made: list[Prompt | Answered | BadLine] = []
    for index, line in enumerate(lines):
        item = parse(index + 1, orjson.dumps({"id": index, **line}))
        made.append(item if isinstance(item, BadLine) else task.prepare(item))
    return made


async def run_task(
    task: Task, lines: Sequence[dict[str, Any]], client: LLMClient, *, show_progress: bool
) -> list[Result]:
    """Every line's final result (the task's fields included), in input order."""

    async def source() -> AsyncIterator[Prompt | Answered | BadLine]:
        for item in prompts_of(task, lines):
            yield item

    results = await client._run_records(
        source(), len(lines), show_progress=show_progress, finish=task.finish
    )
    # Lines the run stopped before sending go through the task too: they carry its fields.
    return [
        result if result is not None else task.finish(not_run(index))
        for index, result in enumerate(results)
    ]
