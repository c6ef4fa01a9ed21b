"""What a run would send (`lm-deluge run --dry-run`): requests, tokens and cost per model.

Nothing is sent and no key is needed: models resolve through the registry alone.
The input is streamed, so a dry run of any size holds one batch of lines at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from lm_deluge_cli.cache.key import content_digest
from lm_deluge_cli.config import STDIO, Job, Limits, ModelEntry
from lm_deluge_cli.engine.budget import estimate_cost
from lm_deluge_cli.engine.choice import content_draw, weighted_index
from lm_deluge_cli.engine.fit import Budget, check_answers, fits_none, misfit, need_on
from lm_deluge_cli.io.idset import IdSet
from lm_deluge_cli.io.reader import BadLine, InputReader
from lm_deluge_cli.io.resume import ResumeState, scan_output
from lm_deluge_cli.providers import Endpoint, max_output_tokens
from lm_deluge_cli.providers.capabilities import NATIVE_SAMPLES
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.tokens import estimate_message_tokens
from lm_deluge_cli.types import Prompt, SamplingParams

__all__ = ["DryRunReport", "ModelPlan", "plan_job"]

# How many bad lines a dry run quotes; the count covers all of them.
MAX_BAD_LINE_EXAMPLES = 5


@dataclass(slots=True)
class ModelPlan:
    """One model's share of the run."""

    name: str
    info: ModelInfo
    sampling: SamplingParams
    requests: int = 0
    input_tokens: int = 0
    max_output_tokens: int = 0
    # Where the model's requests go: its thinking budgets count as output, as in the run.
    provider: ProviderInfo | None = None
    # The smallest tokens/min its requests pass through (None: none, or learned with auto).
    budget: Budget | None = None

    @property
    def wire_format(self) -> str | None:
        """The adapter's format, whose provider's rules count images and PDFs."""
        if self.provider is None:
            return None
        return self.info.wire_format or self.provider.wire_format

    def output_tokens(self, sampling: SamplingParams) -> int:
        """The most one request may generate, thinking budgets included."""
        if self.provider is None:
            return sampling.max_new_tokens
        return max_output_tokens(Endpoint(self.name, self.info, self.provider, ""), sampling)

    def misfit(self, sampling: SamplingParams, prompt_tokens: int) -> str | None:
        """Why the run would refuse a line of `prompt_tokens` on this model (engine/fit.py)."""
        if self.provider is None:
            return None
        endpoint = Endpoint(self.name, self.info, self.provider, "")
        return misfit(self.name, self.info, need_on(endpoint, sampling, prompt_tokens), self.budget)

    @property
    def cost_usd(self) -> float | None:
        """The most these requests may cost (every reply at its longest); None if unpriced."""
        return estimate_cost(self.info, self.input_tokens, self.max_output_tokens)

    def to_dict(self) -> dict[str, object]:
        cost = self.cost_usd
        return {
            "model": self.name,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "estimated_cost_usd": None if cost is None else round(cost, 6),
        }


@dataclass(slots=True)
class DryRunReport:
    """The whole dry run: per model, totals, and the lines that would fail."""

    models: list[ModelPlan]
    # Non-blank input lines, prompts and bad lines alike.
    lines: int = 0
    bad_lines: int = 0
    bad_line_examples: list[str] = field(default_factory=list)
    # Prompts whose id already has an ok record in the output (a rerun skips them).
    already_done: int = 0
    # Lines that would share the request of an identical earlier line (not counted).
    identical: int = 0
    max_cost_usd: float | None = None

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.models)

    @property
    def input_tokens(self) -> int:
        return sum(m.input_tokens for m in self.models)

    @property
    def max_output_tokens(self) -> int:
        return sum(m.max_output_tokens for m in self.models)

    @property
    def cost_usd(self) -> float:
        """The estimated cost of the models whose price is known."""
        return sum(cost for m in self.models if (cost := m.cost_usd) is not None)

    @property
    def unpriced(self) -> list[str]:
        """Models that would be sent requests but have no known price."""
        return [m.name for m in self.models if m.requests and m.cost_usd is None]

    def to_dict(self) -> dict[str, object]:
        """The report as plain data (for --json)."""
        return {
            "dry_run": True,
            "models": [m.to_dict() for m in self.models],
            "total": {
                "requests": self.requests,
                "input_tokens": self.input_tokens,
                "max_output_tokens": self.max_output_tokens,
                # A lower bound when a model's price is unknown (see unpriced_models).
                "estimated_cost_usd": round(self.cost_usd, 6),
            },
            "unpriced_models": self.unpriced,
            "lines": self.lines,
            "bad_lines": self.bad_lines,
            "bad_line_examples": self.bad_line_examples,
            "already_done": self.already_done,
            "identical_lines": self.identical,
            "max_cost_usd": self.max_cost_usd,
        }


def plan_job(
    job: Job, *, skip_done: bool = True, items: Iterable[Prompt | BadLine] | None = None
) -> DryRunReport:
    """Read the job's input (or `items`) and tally what a run would send.

    With `skip_done`, prompts already done in an existing output are counted, not
    planned, as a rerun would skip them (off for --fresh, which starts over). The
    output is only read, never repaired or locked.
    """
    registry = job.model_registry()
    plans = []
    for entry in job.models:
        info = registry.lookup(entry.name)
        sampling = job.sampling.merged(entry.sampling)
        plans.append(
            ModelPlan(
                entry.name,
                info,
                sampling,
                provider=registry.provider(info.provider),
                budget=_budget(entry, job.limits),
            )
        )
    # As the run: refused when no model can give answers as long as the job asks.
    check_answers([(plan.name, plan.info, plan.output_tokens(plan.sampling)) for plan in plans])
    report = DryRunReport(plans, max_cost_usd=job.limits.max_cost)
    state = _done_state(job.output) if skip_done else None
    weights = [entry.weight for entry in job.models]
    shard = job.shard
    if items is None:
        with InputReader(job.input, files_root=job.files_root) as reader:
            _tally(report, (i for i in reader if shard is None or shard.owns(i)), state, weights)
    else:
        _tally(report, (i for i in items if shard is None or shard.owns(i)), state, weights)
    return report


def _done_state(output: str) -> ResumeState | None:
    if output in ("", STDIO) or not Path(output).is_file():
        return None
    return scan_output(output, repair=False)


def _tally(
    report: DryRunReport,
    items: Iterable[Prompt | BadLine],
    state: ResumeState | None,
    weights: Sequence[float],
) -> None:
    # What each request asks, as the run keys it (up to its sampling): identical ones share.
    seen = IdSet()
    for item in items:
        report.lines += 1
        if isinstance(item, BadLine):
            _bad(report, item.reason)
            continue
        if state is not None and state.is_done(item):
            report.already_done += 1
            continue
        content = content_digest(item.messages, item.extra_body)
        if item.model is not None:
            plan = _pinned(report.models, item.model)
            if plan is None:
                names = ", ".join(m.name for m in report.models)
                _bad(
                    report,
                    f"line {item.line}: model {item.model!r} is not one of this job's models "
                    f"({names})",
                )
                continue
        else:
            # The run's own rule: the model follows from the content, in proportion to weight.
            plan = report.models[weighted_index(weights, content_draw(content))]
        # As the run: a line that can never fit its model goes to one it fits, or is refused.
        fitted = _fit(report.models, weights, plan, item, content)
        if isinstance(fitted, str):
            _bad(report, f"line {item.line}: not sent: {fitted}")
            continue
        plan, prompt_tokens = fitted
        asked = orjson.dumps(item.sampling, option=orjson.OPT_SORT_KEYS).decode()
        if not seen.add(f"{plan.name}\n{content}\n{asked}"):
            report.identical += 1
            continue
        sampling = plan.sampling.merged(item.sampling)
        # Several samples: one request where the API returns them all, else one each.
        requests = 1 if plan.wire_format in NATIVE_SAMPLES else sampling.samples
        plan.requests += requests
        plan.input_tokens += requests * prompt_tokens
        plan.max_output_tokens += sampling.samples * plan.output_tokens(sampling)


def _bad(report: DryRunReport, reason: str) -> None:
    report.bad_lines += 1
    if len(report.bad_line_examples) < MAX_BAD_LINE_EXAMPLES:
        report.bad_line_examples.append(reason)


def _pinned(plans: Sequence[ModelPlan], name: str) -> ModelPlan | None:
    """The plan a line pinned to `name` goes to, matched as the run matches it."""
    for plan in plans:
        if name in (plan.name, plan.info.id, plan.info.wire_id):
            return plan
    return None


def _fit(
    plans: Sequence[ModelPlan],
    weights: Sequence[float],
    plan: ModelPlan,
    item: Prompt,
    content: str,
) -> tuple[ModelPlan, int] | str:
    """The model the run sends `item` to and its prompt's tokens there, or why it would be
    refused: its drawn model, else one of the others it fits by weight with the same draw
    (none for a pinned line), as `Requester.plan` chooses."""
    tokens = _prompt_tokens(plan, item)
    problem = plan.misfit(plan.sampling.merged(item.sampling), tokens)
    if problem is None:
        return plan, tokens
    if item.model is not None:
        return problem
    problems: dict[str, str | None] = {plan.name: problem}
    fitting: list[tuple[ModelPlan, float]] = []
    for other, weight in zip(plans, weights, strict=True):
        if weight > 0 and other is not plan:
            sampling = other.sampling.merged(item.sampling)
            found = problems[other.name] = other.misfit(sampling, _prompt_tokens(other, item))
            if found is None:
                fitting.append((other, weight))
    if not fitting:
        return fits_none(problems)
    chosen = fitting[weighted_index([w for _, w in fitting], content_draw(content))][0]
    return chosen, _prompt_tokens(chosen, item)


def _prompt_tokens(plan: ModelPlan, item: Prompt) -> int:
    return estimate_message_tokens(item.messages, provider=plan.wire_format or "openai")


def _budget(entry: ModelEntry, limits: Limits) -> Budget | None:
    """The smallest fixed tokens/min a model's requests pass through, as engine/setup.py
    builds its limiters (a limit learned with auto is not known before the run)."""
    run = limits.max_tokens_per_minute
    own = entry.max_tokens_per_minute
    candidates: list[Budget] = []
    if isinstance(own, float | int):
        candidates.append(Budget(float(own), entry.name))
    if isinstance(run, float | int):
        candidates.append(Budget(float(run)))
    return min(candidates, key=lambda b: b.tokens_per_minute, default=None)
