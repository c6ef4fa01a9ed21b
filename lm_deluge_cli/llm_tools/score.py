"""`score`: one yes/no question over each text → ``answer`` ("yes" / "no") and ``p_yes``.

``p_yes`` comes from the log-probabilities of the first answer token's top alternatives
(every provider's are in OpenAI's ``logprobs.content`` shape in a record): each token is
normalised (stripped, lower-cased), the probabilities of the "yes" forms and of the "no"
forms are summed, and p_yes = yes / (yes + no). It is null where no logprobs came back (a
model without them, or ``--no-logprobs``) or neither form is among the alternatives.

A reply that is neither yes nor no is an error record of its own type,
``unparseable_answer``, so a rerun asks again (its answer is in the result cache: rerun
with ``--refresh-cache`` to send it again rather than reuse it).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from lm_deluge_cli.client import LLMClient
from lm_deluge_cli.engine.task import Answered, LineParser
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.text_lines import TextItem, parse_text_line
from lm_deluge_cli.llm_tools.batch import ToolRun
from lm_deluge_cli.results import ErrorInfo, Result
from lm_deluge_cli.types import Prompt

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_TOP_LOGPROBS",
    "UNPARSEABLE_ANSWER",
    "ScoreCounts",
    "ScoreTask",
    "p_yes",
    "parse_answer",
    "score",
    "score_async",
    "score_prompt",
]

# The error type of a reply that is neither yes nor no.
UNPARSEABLE_ANSWER = "unparseable_answer"
# Alternatives asked for at the answer token: enough for both Yes and No to be among them.
DEFAULT_TOP_LOGPROBS = 10
# The answer is one word; the CLI asks for no more unless told otherwise.
DEFAULT_MAX_NEW_TOKENS = 16
_ANSWER = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def score_prompt(question: str, text: str) -> str:
    """What is asked for one text."""
    return (
        f'{question.strip()}\n\nText:\n"""\n{text}\n"""\n\n'
        "Answer yes or no: reply with the one word Yes or No."
    )


def parse_answer(completion: str | None) -> str | None:
    """``"yes"`` / ``"no"`` for a reply that starts with either word ("Yes.", "no, …"), else
    None."""
    if completion is None:
        return None
    match = _ANSWER.match(completion)
    return match.group(1).lower() if match else None


def p_yes(logprobs: Any) -> float | None:
    """P(yes) from the first answer token's top alternatives (see the module docstring)."""
    if not isinstance(logprobs, list):
        return None
    for step in logprobs:
        if not isinstance(step, Mapping):
            return None
        token = step.get("token")
        if not isinstance(token, str) or not token.strip():
            continue  # leading whitespace or an empty token is not the answer yet
        alternatives = [a for a in step.get("top_logprobs") or [] if isinstance(a, Mapping)]
        if not alternatives:
            return None
        if all(a.get("token") != token for a in alternatives):
            alternatives.append(step)
        yes = no = 0.0
        for alternative in alternatives:
            form, logprob = alternative.get("token"), alternative.get("logprob")
            if not isinstance(form, str) or not isinstance(logprob, int | float):
                continue
            normalised = form.strip().lower()
            if normalised == "yes":
                yes += math.exp(logprob)
            elif normalised == "no":
                no += math.exp(logprob)
        return yes / (yes + no) if yes + no > 0 else None
    return None


@dataclass(slots=True)
class ScoreCounts:
    """This run's answers, for the summary."""

    yes: int = 0
    no: int = 0
    unparseable: int = 0


class ScoreTask:
    """A `Task` for `run_job` over ``{"id", "text"}`` lines: the question over each text,
    with ``answer`` and ``p_yes`` on every record (null on errors)."""

    def __init__(
        self,
        question: str,
        *,
        logprobs: bool = True,
        top_logprobs: int | None = DEFAULT_TOP_LOGPROBS,
        max_new_tokens: int | None = None,
    ) -> None:
        if not question.strip():
            raise ConfigError('the question is empty; give --question "Is this …?"')
        self.question = question
        # Per-prompt sampling overrides: logprobs for p_yes, and a short answer.
        self.sampling: dict[str, Any] = {"logprobs": logprobs}
        if logprobs and top_logprobs is not None:
            self.sampling["top_logprobs"] = top_logprobs
        if max_new_tokens is not None:
            self.sampling["max_new_tokens"] = max_new_tokens
        self.counts = ScoreCounts()

    def parser(self, base_dir: Path | None, files_root: Path | None) -> LineParser:
        return parse_text_line

    def prepare(self, item: Any) -> Prompt | Answered | BadLine:
        text_item: TextItem = item
        return Prompt(
            id=text_item.id,
            line=text_item.line,
            messages=[{"role": "user", "content": score_prompt(self.question, text_item.text)}],
            metadata=text_item.metadata,
            sampling=dict(self.sampling),
        )

    def finish(self, record: Result) -> Result:
        if "answer" in record.fields:
            return record
        if not record.ok:
            return record.replace(fields={**record.fields, "answer": None, "p_yes": None})
        answer = parse_answer(record.completion)
        if answer is None:
            self.counts.unparseable += 1
            reply = (record.completion or "")[:80]
            error = ErrorInfo(UNPARSEABLE_ANSWER, f"the reply is neither yes nor no: {reply!r}")
            fields = {**record.fields, "answer": None, "p_yes": None}
            return record.replace(status="error", error=error, fields=fields)
        if answer == "yes":
            self.counts.yes += 1
        else:
            self.counts.no += 1
        fields = {**record.fields, "answer": answer, "p_yes": p_yes(record.logprobs)}
        return record.replace(fields=fields)


def _line(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"text": item}
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"score items are strings or dicts with 'text', got {type(item).__name__}")


async def score_async(
    items: Sequence[Any],
    question: str,
    *,
    model: str | Sequence[str] | None = None,
    client: LLMClient | None = None,
    return_probabilities: bool = False,
    top_logprobs: int = DEFAULT_TOP_LOGPROBS,
    max_new_tokens: int | None = None,
    show_progress: bool = False,
    return_prompts: bool = False,
    return_records: bool = False,
    **client_options: Any,
) -> list[Any]:
    """Ask `question` about each item (a string, or a dict with ``text``), in input order:
    True / False for yes / no, None where it failed; with ``return_probabilities=True``,
    p(yes) from the answer token's logprobs instead (None where the model gave none).

    Give `model` (with any LLMClient keyword arguments) or a `client`. ``return_records``
    gives the full records (`run`'s fields plus ``answer`` and ``p_yes``).
    """
    task = ScoreTask(question, top_logprobs=top_logprobs, max_new_tokens=max_new_tokens)
    lines = [_line(item) for item in items]
    run = ToolRun(model, client, client_options, show_progress, return_prompts, return_records)
    return await run.give(task, lines, partial(_values, probabilities=return_probabilities))


def _values(results: list[Result], *, probabilities: bool) -> list[Any]:
    """p(yes) of each result, or whether it is yes (None where there is no answer)."""
    if probabilities:
        return [result.fields["p_yes"] for result in results]
    answers = [result.fields["answer"] for result in results]
    return [None if answer is None else answer == "yes" for answer in answers]


def score(items: Sequence[Any], question: str, **kwargs: Any) -> list[Any]:
    """`score_async` for code that is not async (same arguments)."""
    return anyio.run(functools.partial(score_async, items, question, **kwargs))
