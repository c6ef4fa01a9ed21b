"""One prompt through to one record: pick a model, respect the limits, send, retry, classify."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import cast

import anyio

from lm_deluge_cli.cache.key import RequestKeys, content_digest, line_key
from lm_deluge_cli.engine.budget import SpendCap, estimate_cost
from lm_deluge_cli.engine.choice import alive, content_draw, pick
from lm_deluge_cli.engine.fit import LineFit, budget_of, refit
from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.limiter import Ticket
from lm_deluge_cli.engine.line_plan import ModelSlot, Plan
from lm_deluge_cli.engine.retry import decide, pause_for_rate_limit
from lm_deluge_cli.engine.reuse import (
    Pending,
    Reuse,
    StoredAnswer,
    cached_record,
    combine_samples,
    shared_record,
)
from lm_deluge_cli.engine.slots import Slots
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission, PrefixGate, cache_prefix
from lm_deluge_cli.errors import (
    AllModelsDeadError,
    APIError,
    EmptyAnswerError,
    ModelUnavailableError,
    RateLimitError,
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
from lm_deluge_cli.schema import completion_violation
from lm_deluge_cli.tokens import estimate_message_tokens
from lm_deluge_cli.types import (
    Completion,
    HttpRequest,
    HttpResponse,
    Prompt,
    RateLimitInfo,
    RequestDefaults,
    Result,
    SamplingParams,
    Usage,
)

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
        self.concurrency = Slots(max_concurrent_requests)
        self.max_attempts = max_attempts
        self.request_timeout = request_timeout
        self.retry_other_model = retry_other_model
        self.stats = stats
        self.rng = rng or random.Random()
        self.fatal: AllModelsDeadError | None = None
        # The spending cap, if the job has one.
        self.budget = budget
        # The cache and identical lines in flight (None: every line sends its own request).
        self.reuse = reuse
        # Set when the run stops: nothing more is sent, prompts not sent get no record.
        self.halted = False
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

    def halt(self) -> None:
        """Send nothing more; requests already sent still complete."""
        self.halted = True

    @property
    def cap_reached(self) -> bool:
        """Whether the spending cap refused a request: the run should stop dispatching."""
        return self.budget is not None and self.budget.reached

    @property
    def should_stop(self) -> bool:
        """Whether the run cannot usefully go on (every model dead, or the cap reached)."""
        return self.fatal is not None or self.cap_reached

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
        attempt = 0
        while True:
            if slot.dead_reason is not None:
                # Another prompt found this model unusable while we waited.
                if self._alive(exclude=None) is None:
                    raise Halted  # the run is stopping: unsent prompts are left for the resume
                if prompt.model is not None:
                    return records.error_result(
                        prompt,
                        model=slot.endpoint.name,
                        error_type=ModelUnavailableError.type,
                        message=f"{slot.endpoint.name} stopped: {slot.dead_reason}",
                        attempts=attempt,
                    )
                slot = self._pick(prompt, exclude=slot)
            attempt += 1
            sampling = self._supported(slot.endpoint, slot.sampling.merged(prompt.sampling))
            if sampling.samples != count:
                sampling = dataclasses.replace(sampling, samples=count)
            try:
                completion, latency, cost = await self._attempt(slot, prompt, sampling, estimate)
            except APIError as error:
                self._note_error(slot, error)
                decision = decide(error, attempt, self.max_attempts, self.rng)
                # A refused key moves the prompt to another live model, if there is one.
                moved = (
                    error.fatal
                    and prompt.model is None
                    and attempt < self.max_attempts
                    and self._alive(exclude=slot) is not None
                )
                if not (decision.retry or moved):
                    return records.error_result(
                        prompt,
                        model=slot.endpoint.name,
                        error_type=error.type,
                        message=error.message,
                        status_code=error.status_code,
                        attempts=attempt,
                    )
                self.stats.retries += 1
                if decision.retry:
                    log.debug("retrying %s: %s", prompt.id, decision.reason)
                    await anyio.sleep(decision.delay_s)
                if self.retry_other_model and prompt.model is None:
                    slot = self._pick(prompt, exclude=slot)
                continue
            usage = completion.usage
            self.stats.input_tokens += usage.input_tokens
            self.stats.output_tokens += usage.output_tokens
            self.stats.cache_read_tokens += usage.cached_input_tokens
            self.stats.cache_write_tokens += usage.cache_write_tokens
            if cost is None:
                self.stats.cost_known = False
            else:
                self.stats.cost_usd += cost
            return records.ok_result(
                prompt,
                model=slot.endpoint.name,
                completion=completion,
                cost_usd=cost,
                attempts=attempt,
                latency_s=latency,
            )

    async def _attempt(
        self, slot: ModelSlot, prompt: Prompt, sampling: SamplingParams, estimate: int
    ) -> tuple[Completion, float, float | None]:
        """One request; returns the completion, its own latency (no queueing) and its cost."""
        request = slot.adapter.build_request(slot.endpoint, prompt, sampling, self.request_timeout)
        if self.halted:
            raise Halted
        reserved = 0.0
        # Thinking budgets count: the provider may bill and rate-limit them as output, as it
        # does every sample asked of one request.
        output = max_output_tokens(slot.endpoint, sampling) * sampling.samples
        if self.budget is not None:
            # With prompt caching on, the input may be written to the cache, which costs more.
            prompt_cache = slot.endpoint.prompt_cache
            ttl = prompt_cache.ttl if prompt_cache is not None else None
            reserved = estimate_cost(slot.endpoint.model, estimate, output, ttl) or 0.0
            if not await self.budget.reserve(reserved):
                self.stats.cost_cap_reached = True
                raise Halted  # the cap is reached: left for a run with a higher cap
        cost: float | None = None
        try:
            probe: AbstractAsyncContextManager[None] = (
                slot.learner.probe() if slot.learner is not None else nullcontext()
            )
            async with probe, self._warm(slot, prompt) as admission:
                tokens = estimate + output
                response, tickets, sent = await self._send(slot, request, tokens, prompt.line)
                admission.warmed = response.status < 300
                info = slot.adapter.rate_limit_info(response.headers)
                if slot.learner is not None:
                    slot.learner.learn(info, response.status)
                slot.limits.observe(tickets, info, describes=slot.headers_describe)
            completion = slot.adapter.parse_response(slot.endpoint, response)
            cost = slot.endpoint.model.cost(completion.usage)
            if cost is not None:
                cost = round(cost, COST_DECIMALS)
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, cost or 0.0)
        # No answer can be longer than max_tokens: a report above it (a broken server) must
        # not put the whole run in token debt for minutes.
        used = completion.usage.input_tokens + min(completion.usage.output_tokens, output)
        if used:
            slot.limits.reconcile(tickets, used)
        for answer in completion.answers:
            if answer.empty:
                raise EmptyAnswerError(
                    f"{response.status}: the answer holds no text, tool call or refusal "
                    f"(finish reason {answer.provider_finish_reason or answer.finish_reason})",
                    status_code=response.status,
                )
            if sampling.json_schema is not None:
                problem = completion_violation(answer.text, sampling.json_schema)
                if problem is not None:
                    raise SchemaValidationError(
                        f"the answer does not match the json_schema: {problem}",
                        status_code=response.status,
                    )
        return completion, time.monotonic() - sent, cost

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

    async def _send(
        self, slot: ModelSlot, request: HttpRequest, tokens: int, line: int
    ) -> tuple[HttpResponse, tuple[Ticket, ...], float]:
        """Wait for a concurrency slot and the limiters, then send; also when it left. A
        request holding much of a tokens/min budget is named in the progress (`line`)."""
        stats = self.stats
        # While every slot is sending and a request waits for one, concurrency is what holds
        # the run back: stats.slots_full_s adds up that time (engine/bound_by.py).
        wants_slot = not self.concurrency.available_tokens
        if wants_slot:
            stats.slot_waiters += 1
            full = stats.in_flight == stats.max_concurrent_requests
            if full and stats.slots_full_since is None:
                stats.slots_full_since = time.monotonic()
        try:
            await self.concurrency.acquire()
        finally:
            if wants_slot:
                stats.slot_waiters -= 1
        try:
            budget = budget_of(slot)
            big = None
            if budget is not None:
                big = stats.note_big_line(line, tokens, budget.tokens_per_minute, budget.model)
            try:
                tickets = await slot.limits.acquire(tokens)
                if self.halted:
                    slot.limits.release(tickets)
                    raise Halted
            except BaseException:
                stats.drop_big_line(big)
                raise
            stats.requests += 1
            stats.in_flight += 1
            sent = time.monotonic()
            if big is not None:
                big.sent_at = sent
            if stats.in_flight == stats.max_concurrent_requests and stats.slot_waiters:
                stats.slots_full_since = sent
            try:
                response = await slot.transport.send(request)
            except BaseException:
                # Answered, if only by a failure: the limiter stops counting it as in flight.
                slot.limits.observe(tickets, NO_INFO, describes=slot.headers_describe)
                raise
            finally:
                stats.in_flight -= 1
                if stats.slots_full_since is not None:
                    stats.slots_full_s += time.monotonic() - stats.slots_full_since
                    stats.slots_full_since = None
        finally:
            self.concurrency.release()
        return response, tickets, sent

    def _supported(self, endpoint: Endpoint, sampling: SamplingParams) -> SamplingParams:
        """`sampling` without what the model does not take, warning once per parameter."""
        kept, dropped = supported_sampling(endpoint, sampling)
        for parameter in dropped:
            if (endpoint.name, parameter) not in self.warned:
                self.warned.add((endpoint.name, parameter))
                log.warning("%s", unsupported_message(endpoint, parameter))
        return kept

    def _note_error(self, slot: ModelSlot, error: APIError) -> None:
        """Update what all prompts share after a failed attempt: pauses, dead models."""
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
            # The limiter the provider's budget belongs to: the model's own, else the run's.
            slot.limits.limiters[0].pause(pause_for_rate_limit(error))
        if not error.fatal or slot.dead_reason is not None:
            return
        slot.dead_reason = error.message
        self.stats.dead_models.append(slot.endpoint.name)
        if self._alive(exclude=None) is None:
            if self.fatal is None:
                self.fatal = AllModelsDeadError(
                    error, slot.endpoint.name, slot.endpoint.api_key_env
                )
        else:
            # The run goes on with the other models; the summary names the last one only.
            key = slot.endpoint.api_key_env
            log.error(
                "stopped sending to %s%s: %s",
                slot.endpoint.name,
                f" (check {key})" if key else "",
                error.message,
            )

    def _alive(self, exclude: ModelSlot | None) -> ModelSlot | None:
        return alive(self.slots, exclude)

    def _pick(
        self, prompt: Prompt, exclude: ModelSlot | None, draw: float | None = None
    ) -> ModelSlot:
        return pick(self.slots, prompt, exclude, draw, self.rng)
