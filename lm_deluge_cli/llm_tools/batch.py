"""Run in-memory inputs through a tool's task and the engine, as `run --task` does for a file.

Each input becomes the input line it would be in a file (``{"id": i, …}``, serialised), so
the Python functions and the commands parse, prompt and record alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from lm_deluge_cli.client import NOT_RUN, LLMClient, not_run
from lm_deluge_cli.engine.task import Answered, Task
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt

__all__ = ["NOT_RUN", "ToolRun", "client_for", "prompts_of", "run_task"]


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


@dataclass(frozen=True, slots=True)
class ToolRun:
    """What a tool function (extract, translate, score) is told about the run rather than
    the tool: the keyword arguments of these names each of them takes, in this order."""

    model: str | Sequence[str] | None
    client: LLMClient | None
    client_options: dict[str, Any]
    show_progress: bool
    return_prompts: bool
    return_records: bool

    async def give(
        self,
        task: Task,
        lines: Sequence[dict[str, Any]],
        values: Callable[[list[Result]], list[Any]],
    ) -> list[Any]:
        """What the tool function returns, in input order: the prompts that would be sent
        (``return_prompts``: nothing is sent), the full records (``return_records``), else
        the tool's `values` of the results."""
        if self.return_prompts:
            return prompts_of(task, lines)
        client = client_for(self.model, self.client, self.client_options)
        results = await run_task(task, lines, client, show_progress=self.show_progress)
        if self.return_records:
            return [to_json(result) for result in results]
        return values(results)
