"""One prompt through to one record: pick a model, respect the limits, send, retry, classify."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import cast

import anyio

from lm_deluge_cli.cache.key import RequestKeys, content_digest, line_key
from lm_deluge_cli.engine.budget import SpendCap, estimate_cost
from lm_deluge_cli.engine.choice import content_draw, pick
from lm_deluge_cli.engine.fit import LineFit, refit
from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.line_plan import ModelSlot, Plan
from lm_deluge_cli.engine.reuse import (
    Pending,
    Reuse,
    StoredAnswer,
    cached_record,
    combine_samples,
    shared_record,
)
from lm_deluge_cli.engine.sender import Outgoing, RequestFailedError, Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission, PrefixGate, cache_prefix
from lm_deluge_cli.errors import (
    EmptyAnswerError,
    SchemaValidationError,
    UsageError,
)
from lm_deluge_cli.io import records
from lm_deluge_cli.providers import Endpoint, max_output_tokens
from lm_deluge_cli.providers.capabilities import (
    NATIVE_SAMPLES,
    supported_sampling,
    unsupported_message,
)
from lm_deluge_cli.results import Completion, Result, Usage
from lm_deluge_cli.schema import completion_violation
from lm_deluge_cli.tokens import estimate_message_tokens
from lm_deluge_cli.types import HttpResponse, Prompt, RateLimitInfo, RequestDefaults, SamplingParams

__all__ = ["ModelSlot", "Plan", "Requester"]

log = logging.getLogger(__name__)

NO_INFO = RateLimitInfo()
# Costs are kept to a millionth of a cent: beyond that is float noise.
COST_DECIMALS = 10


class Requester:
    """Turns prompts into records, sharing limits, stats and model health across a run."""

    def __init__(
        self,
        slots: Sequence[ModelSlot],
        *,
        max_concurrent_requests: int,
        max_attempts: int,
        request_timeout: float,
        retry_other_model: bool,
        stats: RunStats,
        rng: random.Random | None = None,
        budget: SpendCap | None = None,
        reuse: Reuse | None = None,
        defaults: RequestDefaults | None = None,
        dedupe: bool = True,
        warmup: PrefixGate | None = None,
    ) -> None:
        self.slots = list(slots)
        self.request_timeout = request_timeout
        self.stats = stats
        self.rng = rng or random.Random()
        # Limits, retries, failover, the spending cap: the run's one sender.
        self.sender = Sender(
            self.slots,
            max_concurrent_requests=max_concurrent_requests,
            max_attempts=max_attempts,
            stats=stats,
            rng=self.rng,
            budget=budget,
            retry_other_model=retry_other_model,
        )
        # The cache and identical lines in flight (None: every line sends its own request).
        self.reuse = reuse
        # (model, parameter) pairs already warned about: one warning each per run.
        self.warned: set[tuple[str, str]] = set()
        # The job's tools, tool choice and prompt cache key, for lines without their own.
        self.defaults = defaults if defaults is not None and not defaults.empty else None
        # Identical lines share one request; without, each line is its own (and cached so).
        self.dedupe = dedupe
        # Prompt-cache warm-up: the first request per cached prefix goes alone (None: off).
        self.warmup = warmup
        # Per model (by id: the slots live as long as this), the job's sampling as sent to it
        # and its request keys, for the lines that sample as the job says.
        self._job_sampling: dict[int, tuple[SamplingParams, RequestKeys | None]] = {}

    async def process(self, prompt: Prompt) -> Result | None:
        """Run one prompt to its final record (ok or error), or None if the run halted first.

        Never raises an APIError. (A run's pipeline plans, looks up and runs its prompts
        in separate steps, so that lookups go to the cache in batches.)
        """
        planned = self.plan(prompt)
        if isinstance(planned, Result):
            return planned
        await self.look_up((planned,))
        return self.hit(planned) or await self.run(planned)

    def plan(self, prompt: Prompt) -> Plan | Result:
        """Where the prompt goes and under which cache keys; an error record when it names
        no usable model, or fits none (engine/fit.py). Does no I/O."""
        if self.defaults is not None:
            prompt = dataclasses.replace(prompt, extra_body=self.defaults.apply(prompt.extra_body))
        content = content_digest(prompt.messages, prompt.extra_body)
        # The first pick follows from what the line asks, so identical lines, and this line in
        # a later run, go to the same model and can share its answer (one model: no choice).
        draw = content_draw(content) if len(self.slots) > 1 else None
        try:
            slot = self._pick(prompt, exclude=None, draw=draw)
        except UsageError as exc:
            return records.error_result(
                prompt, model=prompt.model, error_type="config_error", message=str(exc)
            )
        sampling, keys = self._sampling(slot, prompt)
        fit = LineFit(prompt)
        problem = fit.problem(slot, sampling)
        if problem is not None:
            fitting = refit(
                fit,
                slot,
                problem,
                self.slots,
                lambda s: self._sampling(s, prompt)[0],
                draw,
                self.rng,
            )
            if isinstance(fitting, str):
                return records.error_result(
                    prompt,
                    model=slot.endpoint.name,
                    error_type=records.INVALID_INPUT,
                    message=f"line {prompt.line}: not sent: {fitting}",
                )
            slot, (sampling, keys) = fitting, self._sampling(fitting, prompt)
        estimate = fit.counted(slot.endpoint.wire_format)
        if keys is None:
            return Plan(prompt, slot, sampling.samples, estimate=estimate)
        key = keys.key(content)
        if not self.dedupe:
            # The line is its own request: cached under its id, shared with no other line.
            return Plan(
                prompt,
                slot,
                sampling.samples,
                line_key(key, prompt.key),
                shared=False,
                estimate=estimate,
            )
        return Plan(prompt, slot, sampling.samples, key, estimate=estimate)

    def _sampling(
        self, slot: ModelSlot, prompt: Prompt
    ) -> tuple[SamplingParams, RequestKeys | None]:
        """How the prompt samples on `slot`, and the keys of such requests."""
        if prompt.sampling:
            sampling = self._supported(slot.endpoint, slot.sampling.merged(prompt.sampling))
            return sampling, self._request_keys(slot, sampling)
        # Most lines sample as the job says: what that sends to a model, and the part of
        # its keys that follows from it, are worked out once per model.
        known = self._job_sampling.get(id(slot))
        if known is None:
            sampling = self._supported(slot.endpoint, slot.sampling)
            known = self._job_sampling[id(slot)] = (sampling, self._request_keys(slot, sampling))
        return known

    def _request_keys(self, slot: ModelSlot, sampling: SamplingParams) -> RequestKeys | None:
        """The keys of `slot`'s requests sampled so (None when nothing is reused)."""
        if self.reuse is None:
            return None
        endpoint = slot.endpoint
        return RequestKeys(endpoint.provider.name, endpoint.model.wire_id, sampling)

    async def look_up(self, plans: Sequence[Plan]) -> None:
        """Read the stored answers of every plan's samples, in one read where the cache
        can (nothing when the run reads no cache)."""
        reuse = self.reuse
        if reuse is None or not reuse.reads:
            return
        wanted: list[Plan] = []
        keys: list[str] = []
        for plan in plans:
            key = plan.key
            # A line whose twin is in flight or just answered shares that answer instead.
            if key is None or reuse.shares(plan):
                continue
            wanted.append(plan)
            if plan.samples == 1:
                keys.append(key)
            else:
                keys.extend(plan.sample_keys())
        if not keys:
            return
        found = await reuse.lookup(keys)
        start = 0
        for plan in wanted:
            end = start + plan.samples
            plan.stored = found[start:end]
            start = end

    def hit(self, plan: Plan) -> Result | None:
        """The plan's record when the cache holds every sample's answer: no request."""
        stored = plan.stored
        if stored is None:
            return None
        # (`is None`, not `None in`: that would compare each answer with None.)
        for found in stored:
            if found is None:
                return None
        self.stats.cached += 1
        return cached_record(
            plan.prompt, plan.slot.endpoint.name, cast("list[StoredAnswer]", stored)
        )

    async def run(self, plan: Plan) -> Result | None:
        """The plan's record: shared with an identical line's, else asked of the provider
        (answers the cache holds are used). None if the run halted first."""
        try:
            return await self._run(plan)
        except Halted:
            return None
        finally:
            if self.reuse is not None:
                await self.reuse.settle()

    async def _run(self, plan: Plan) -> Result:
        reuse, key, prompt = self.reuse, plan.key, plan.prompt
        if reuse is None or key is None or not plan.shared:
            return await self._samples(plan)
        pending = reuse.in_flight.get(key)
        if pending is not None:
            await pending.wait()
            if pending.record is None:
                raise Halted  # the run stopped before the shared request finished
            self.stats.deduplicated += 1
            return shared_record(prompt, pending.record)
        earlier = reuse.recent(key)
        if earlier is not None:
            self.stats.deduplicated += 1
            return shared_record(prompt, earlier)
        pending = reuse.in_flight[key] = Pending()
        try:
            record = await self._samples(plan)
            pending.record = record
            reuse.remember(key, record)
            return record
        finally:
            del reuse.in_flight[key]
            pending.finish()

    async def _samples(self, plan: Plan) -> Result:
        """The line's answers: each from the cache under its own key where stored, the
        others asked of the provider (the provider's own n where it has one), stored.

        The first sample's key is the request's own, so one sample is the plain case.
        """
        prompt, slot, count = plan.prompt, plan.slot, plan.samples
        reuse = self.reuse if plan.key is not None else None
        keys = plan.sample_keys()
        if reuse is not None and plan.stored is None:
            await self.look_up((plan,))
            cached = self.hit(plan)
            if cached is not None:
                return cached
        stored = plan.stored or [None] * count
        earlier = [found for found in stored if found is not None]
        answers = [found.completion.answer if found is not None else None for found in stored]
        missing = [index for index, answer in enumerate(answers) if answer is None]
        parts: list[Result] = []
        while missing:
            asked = await self._ask(prompt, slot, len(missing), plan.estimate)
            parts.extend(asked)
            for result in asked:
                if result.status != "ok":
                    continue
                for number, answer in enumerate(result.answers[: len(missing)]):
                    index = missing.pop(0)
                    answers[index] = answer
                    # Stored under this key only if this model answered (not one retried on).
                    if reuse is not None and result.model == slot.endpoint.name:
                        # The request's usage and cost go with its first answer.
                        usage = (result.usage or Usage()) if number == 0 else Usage()
                        cost = result.cost_usd if number == 0 else 0.0
                        reuse.store_answer(keys[index], result.model, answer, usage, cost)
            if any(result.status != "ok" for result in asked):
                break
        return combine_samples(prompt, answers, earlier, parts)

    async def _ask(
        self, prompt: Prompt, slot: ModelSlot, count: int, estimate: int | None = None
    ) -> list[Result]:
        """`count` answers from the provider: one request asking for them all where the
        model's API returns several, else one request each, sent together. `estimate` is
        the prompt's tokens on `slot`, when planning counted them."""
        if count == 1 or slot.endpoint.wire_format in NATIVE_SAMPLES:
            return [await self._answer(prompt, slot, count, estimate)]
        results: list[Result | None] = [None] * count

        async def one(index: int) -> None:
            # A halted one is left for the resume; the others' answers are stored.
            with contextlib.suppress(Halted):
                results[index] = await self._answer(prompt, slot, 1, estimate)

        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(one, index)
        if any(result is None for result in results):
            raise Halted
        return [result for result in results if result is not None]

    async def _answer(
        self, prompt: Prompt, slot: ModelSlot, count: int = 1, estimate: int | None = None
    ) -> Result:
        """The prompt's record from the provider, starting on `slot`; `count` answers asked
        of one request (only models whose API returns several: NATIVE_SAMPLES)."""
        if estimate is None:
            # Images and PDFs are counted by the rule of the provider the prompt starts on.
            estimate = estimate_message_tokens(prompt.messages, provider=slot.endpoint.wire_format)
        ask = _Ask(self, prompt, count, estimate)
        try:
            sent = await self.sender.send(ask, slot, pinned=prompt.model is not None)
        except RequestFailedError as failed:
            error = failed.error
            return records.error_result(
                prompt,
                model=failed.route.name,
                error_type=error.type,
                message=error.message,
                status_code=error.status_code,
                attempts=failed.attempts,
            )
        completion, cost, stats = sent.value, sent.cost_usd, self.stats
        usage = completion.usage
        stats.input_tokens += usage.input_tokens
        stats.output_tokens += usage.output_tokens
        stats.cache_read_tokens += usage.cached_input_tokens
        stats.cache_write_tokens += usage.cache_write_tokens
        if cost is None:
            stats.cost_known = False
        else:
            stats.cost_usd += cost
        return records.ok_result(
            prompt,
            model=sent.route.endpoint.name,
            completion=completion,
            cost_usd=cost,
            attempts=sent.attempts,
            latency_s=sent.latency_s,
        )

    def _warm(self, slot: ModelSlot, prompt: Prompt) -> AbstractAsyncContextManager[Admission]:
        """Held around a request: waits for the leader of its cached prefix, if it has one
        and warm-up is on (see engine/warmup.py)."""
        if self.warmup is None:
            return nullcontext(Admission())
        endpoint = slot.endpoint
        prefix = cache_prefix(
            endpoint.provider.name, endpoint.model.wire_id, prompt, endpoint.prompt_cache
        )
        if prefix is None:
            return nullcontext(Admission())
        return self.warmup.admit(*prefix)

    def _supported(self, endpoint: Endpoint, sampling: SamplingParams) -> SamplingParams:
        """`sampling` without what the model does not take, warning once per parameter."""
        kept, dropped = supported_sampling(endpoint, sampling)
        for parameter in dropped:
            if (endpoint.name, parameter) not in self.warned:
                self.warned.add((endpoint.name, parameter))
                log.warning("%s", unsupported_message(endpoint, parameter))
        return kept

    def _pick(
        self, prompt: Prompt, exclude: ModelSlot | None, draw: float | None = None
    ) -> ModelSlot:
        return pick(self.slots, prompt, exclude, draw, self.rng)


class _Ask:
    """A prompt's request as the sender sends it: built for whichever model it is on, its
    completion read, paid for, and checked (empty, off-schema) after it is paid for."""

    __slots__ = ("count", "estimate", "output", "prompt", "requester", "sampling")

    def __init__(self, requester: Requester, prompt: Prompt, count: int, estimate: int) -> None:
        self.requester = requester
        self.prompt = prompt
        self.count = count
        # The prompt's tokens as counted on the model it started on.
        self.estimate = estimate
        # How the latest attempt sampled, and the most output tokens it asked for (set by
        # `outgoing`; no SamplingParams made here: each one made checks its fields).
        self.sampling: SamplingParams | None = None
        self.output = 0

    def outgoing(self, slot: ModelSlot, attempt: int) -> Outgoing:
        requester, prompt = self.requester, self.prompt
        sampling = requester._sampling(slot, prompt)[0]
        if sampling.samples != self.count:
            sampling = dataclasses.replace(sampling, samples=self.count)
        self.sampling = sampling
        request = slot.adapter.build_request(
            slot.endpoint, prompt, sampling, requester.request_timeout
        )
        # Thinking budgets count: the provider may bill and rate-limit them as output, as it
        # does every sample asked of one request.
        output = self.output = max_output_tokens(slot.endpoint, sampling) * sampling.samples
        return Outgoing(request, self.estimate + output, prompt.line)

    def worst_cost(self, slot: ModelSlot) -> float:
        # With prompt caching on, the input may be written to the cache, which costs more.
        prompt_cache = slot.endpoint.prompt_cache
        ttl = prompt_cache.ttl if prompt_cache is not None else None
        return estimate_cost(slot.endpoint.model, self.estimate, self.output, ttl) or 0.0

    def admit(self, slot: ModelSlot) -> AbstractAsyncContextManager[Admission]:
        return self.requester._warm(slot, self.prompt)

    def read(self, slot: ModelSlot, response: HttpResponse) -> Completion:
        return slot.adapter.parse_response(slot.endpoint, response)

    def cost(self, slot: ModelSlot, answer: Completion) -> float | None:
        cost = slot.endpoint.model.cost(answer.usage)
        return None if cost is None else round(cost, COST_DECIMALS)

    def used_tokens(self, slot: ModelSlot, answer: Completion) -> int:
        # No answer can be longer than max_tokens: a report above it (a broken server) must
        # not put the whole run in token debt for minutes.
        usage = answer.usage
        return usage.input_tokens + min(usage.output_tokens, self.output)

    def check(self, slot: ModelSlot, answer: Completion, status: int) -> None:
        schema = self.sampling.json_schema if self.sampling is not None else None
        for one in answer.answers:
            if one.empty:
                raise EmptyAnswerError(
                    f"{status}: the answer holds no text, tool call or refusal "
                    f"(finish reason {one.provider_finish_reason or one.finish_reason})",
                    status_code=status,
                )
            if schema is not None:
                problem = completion_violation(one.text, schema)
                if problem is not None:
                    raise SchemaValidationError(
                        f"the answer does not match the json_schema: {problem}",
                        status_code=status,
                    )
