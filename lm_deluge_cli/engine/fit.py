"""Whether a line can ever be sent to a model, checked before it is sent.

Two limits no wait can lift. The limiter lets a request larger than its bucket go once the
bucket is full and takes the rest as debt, so a request needing more than a minute's tokens
is sent at once and every line behind it waits until the debt is paid (a prompt of 25,000
tokens at 20,000 tokens/min held the next lines over a minute); it is refused instead. And
a prompt or an answer longer than the model's context window is refused by the provider,
every attempt. The prompt is counted as the limiter counts it (`estimate_message_tokens`),
the answer as all of max_new_tokens with any thinking budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lm_deluge_cli.engine.bound_by import TOKENS, where_to_raise
from lm_deluge_cli.engine.choice import pick_fitting
from lm_deluge_cli.engine.line_plan import ModelSlot
from lm_deluge_cli.engine.sender import Budget, budget_of
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers import Endpoint, max_output_tokens
from lm_deluge_cli.providers.capabilities import NATIVE_SAMPLES
from lm_deluge_cli.providers.registry import ModelInfo
from lm_deluge_cli.tokens import estimate_message_tokens, message_tokens_at_most
from lm_deluge_cli.types import Prompt, SamplingParams

__all__ = [
    "Budget",
    "LineFit",
    "Need",
    "answer_misfit",
    "check_answers",
    "fits_none",
    "misfit",
    "need_on",
    "refit",
]


@dataclass(frozen=True, slots=True)
class Need:
    """What one request for a line takes: its prompt's tokens, the output tokens the limiter
    reserves for it (every answer the request asks, each at its longest), and the longest
    one answer may be."""

    prompt: int
    output: int
    answer: int

    @property
    def tokens(self) -> int:
        """What the limiter acquires for the request."""
        return self.prompt + self.output


def answer_misfit(name: str, model: ModelInfo, answer: int) -> str | None:
    """Why an answer of up to `answer` tokens cannot come from `model` (None when it can):
    no answer is longer than the context window, and the provider refuses to be asked for
    one."""
    window = model.context_window
    if window is None or answer < window:
        return None
    return (
        f"max_new_tokens (with any thinking budget) asks {name} for answers of up to "
        f"{answer:,} tokens, but its context window, prompt and answer together, is "
        f"{window:,} tokens: the provider would refuse every request; lower max_new_tokens "
        f"well below {window:,}"
    )


def check_answers(models: Sequence[tuple[str, ModelInfo, int]]) -> list[str]:
    """Of the job's models (name, registry entry, the longest answer the job asks of it),
    why those that cannot give answers so long cannot. Raises ConfigError when none can:
    every line would be refused, so the run is refused before anything is sent."""
    problems = [
        problem
        for name, info, answer in models
        if (problem := answer_misfit(name, info, answer)) is not None
    ]
    if problems and len(problems) == len(models):
        raise ConfigError("; ".join(problems))
    return problems


def fits_none(problems: Mapping[str, str | None]) -> str:
    """Why a line is refused, from each model's problem with it (by model name)."""
    found = [(name, problem) for name, problem in problems.items() if problem is not None]
    if len(found) == 1:
        return found[0][1]
    each = "; ".join(f"on {name}, {problem}" for name, problem in found)
    return f"it fits none of the job's models: {each}"


def misfit(name: str, model: ModelInfo, need: Need, budget: Budget | None) -> str | None:
    """Why a request needing `need` can never go to the model `name` (None when it can)."""
    window = model.context_window
    if window is not None and need.prompt > window:
        return (
            f"the prompt is ~{need.prompt:,} tokens, more than {name}'s context window of "
            f"{window:,}; shorten the line or send it to a model with a larger window"
        )
    too_long = answer_misfit(name, model, need.answer)
    if too_long is not None:
        return too_long
    if budget is None or need.tokens <= budget.tokens_per_minute:
        return None
    owner = budget.model
    if owner is not None and budget.learned:
        where = f"{owner}'s limit (learned from its provider: a higher tier raises it)"
    else:
        where = where_to_raise(TOKENS, owner)
    whose = f"{owner}'s" if owner is not None else "the run's"
    return (
        f"the request needs ~{need.tokens:,} tokens (~{need.prompt:,} of prompt and "
        f"{need.output:,} held for the answer, all of max_new_tokens), more than {whose} "
        f"limit of {budget.tokens_per_minute:,.0f} tokens/min, so it would hold up the lines "
        f"behind it for over a minute; raise {where}, shorten the line, or lower max_new_tokens"
    )


def need_on(endpoint: Endpoint, sampling: SamplingParams, prompt_tokens: int) -> Need:
    """What one request of a line with `prompt_tokens`, sampled so, takes on `endpoint`."""
    answer = max_output_tokens(endpoint, sampling)
    # A model that returns several answers from one request reserves them all at once.
    per_request = sampling.samples if endpoint.wire_format in NATIVE_SAMPLES else 1
    return Need(prompt_tokens, answer * per_request, answer)


class LineFit:
    """One line's fit to the run's models. The prompt is counted only when a bound found
    without counting does not already fit, and once per counting rule (`estimate`)."""

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        self._bound: int | None = message_tokens_at_most(prompt.messages)
        # Per wire format (images and PDFs are counted by each provider's rule).
        self._estimates: dict[str, int] = {}

    def estimate(self, wire_format: str) -> int:
        """The prompt's tokens as the limiter counts them for `wire_format`."""
        known = self._estimates.get(wire_format)
        if known is None:
            known = estimate_message_tokens(self.prompt.messages, provider=wire_format)
            self._estimates[wire_format] = known
        return known

    def counted(self, wire_format: str) -> int | None:
        """The estimate for `wire_format` if this check already made it."""
        return self._estimates.get(wire_format)

    def problem(self, slot: ModelSlot, sampling: SamplingParams) -> str | None:
        """Why the line, sampled so, can never be sent to `slot` (None when it can)."""
        endpoint = slot.endpoint
        budget = budget_of(slot)
        if endpoint.model.context_window is None and budget is None:
            return None
        name, info = endpoint.name, endpoint.model
        bound = self._bound
        if (
            bound is not None
            and misfit(name, info, need_on(endpoint, sampling, bound), budget) is None
        ):
            return None
        need = need_on(endpoint, sampling, self.estimate(endpoint.wire_format))
        return misfit(name, info, need, budget)


def refit(
    fit: LineFit,
    drawn: ModelSlot,
    problem: str,
    slots: Sequence[ModelSlot],
    sampling_on: Callable[[ModelSlot], SamplingParams],
    draw: float | None,
    rng: random.Random,
) -> ModelSlot | str:
    """Another model for a line that does not fit `drawn` (for `problem`): one it fits, by
    weight with the same `draw`, so a rerun agrees; or why it fits none (`fits_none`). A line
    that names its model stays with it."""
    problems: dict[str, str | None] = {drawn.endpoint.name: problem}
    if fit.prompt.model is not None:
        return fits_none(problems)

    def fits(other: ModelSlot) -> bool:
        found = fit.problem(other, sampling_on(other))
        problems[other.endpoint.name] = found
        return found is None

    fitting = pick_fitting(slots, fits, draw, rng)
    return fits_none(problems) if fitting is None else fitting
