"""ToolRun: what a tool function gives back (the prompts, the records or the tool's own
values, in input order), and the client it runs on."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lm_deluge_cli.client import LLMClient
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.llm_tools.batch import ToolRun
from lm_deluge_cli.llm_tools.score import ScoreTask, score_prompt
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt

QUESTION = "Is it a number?"
TEXTS = ["one", "two", "three"]


def give(run: ToolRun) -> list[Any]:
    def values(results: list[Result]) -> list[Any]:
        return [(result.line, result.fields["answer"]) for result in results]

    async def go() -> list[Any]:
        lines = [{"text": text} for text in TEXTS]
        return await run.give(ScoreTask(QUESTION), lines, values)

    return anyio.run(go)


def test_the_prompts_are_given_with_no_model_and_nothing_sent() -> None:
    prompts = give(ToolRun(None, None, {}, False, True, False))
    assert all(isinstance(p, Prompt) for p in prompts)
    assert [p.line for p in prompts] == [1, 2, 3]
    assert [p.messages[-1]["content"] for p in prompts] == [
        score_prompt(QUESTION, text) for text in TEXTS
    ]


def test_the_records_else_the_tools_values_in_input_order() -> None:
    records = give(ToolRun("mock:fast", None, {}, False, False, True))
    assert [r["line"] for r in records] == [1, 2, 3]
    assert all(r["status"] == "ok" and r["answer"] in ("yes", "no") for r in records)
    values = give(ToolRun("mock:fast", None, {}, False, False, False))
    assert values == [(r["line"], r["answer"]) for r in records]


def test_it_runs_on_a_model_or_a_client_not_both() -> None:
    with pytest.raises(ConfigError, match="give model="):
        give(ToolRun(None, None, {}, False, False, False))
    with pytest.raises(ConfigError, match="not both"):
        give(ToolRun("mock:fast", LLMClient("mock:fast"), {}, False, False, False))
    assert len(give(ToolRun(None, LLMClient("mock:fast"), {}, False, False, False))) == 3
