"""Answers paid for once: cache hits, and identical lines of one run sharing one request.

A prompt's request is keyed (`cache.key`) by the model it goes to, what it asks and the
sampling sent. Before anything is sent the key is looked up in the cache; a hit becomes
the line's record at no cost, without touching the rate limiters. While a key's request
is in flight, other lines with the same key wait for it and copy its record (marked
``deduplicated``) instead of sending their own; so do later lines, while the answer is
among the run's most recent answers (up to `RECENT_ANSWERS`, and about `RECENT_BYTES` of
them: memory stays bounded on any input; further apart, the cache serves them). Only
successful answers are stored or remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
import orjson

from lm_deluge_cli.cache.resilient import ResilientCache, open_resilient
from lm_deluge_cli.cache.spec import default_cache_file
from lm_deluge_cli.cache.write_behind import WriteBehind
from lm_deluge_cli.config import CacheConfig
from lm_deluge_cli.io import records
from lm_deluge_cli.results import Answer, Completion, Result, Usage
from lm_deluge_cli.types import Prompt

if TYPE_CHECKING:
    from lm_deluge_cli.engine.line_plan import Plan

__all__ = [
    "CachePolicy",
    "Pending",
    "Reuse",
    "StoredAnswer",
    "cached_record",
    "combine_samples",
    "open_reuse",
    "shared_record",
]

# Bumped when the stored value's shape changes. Version 1 held one answer's text; version 2
# holds whole answers (tool calls, reasoning, refusals, samples). Both are read.
VALUE_VERSION = 2
# How many successful answers a run remembers for identical later lines, and about how much
# memory they may take (a record's size is estimated from what its answers hold).
RECENT_ANSWERS = 10_000
RECENT_BYTES = 8 * 2**20
# What a remembered record costs beyond its answers' text: the objects around it.
_RECORD_BYTES = 700
# (Mapped over a hit's answers: quicker than a generator.)
_SAYS_NOTHING = attrgetter("empty")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What the run does with the cache: read hits, write answers, and for how long."""

    read: bool = True
    write: bool = True
    ttl_s: float | None = None


class StoredAnswer(NamedTuple):
    """What the cache keeps of a successful answer (a named tuple: one is read for every
    hit, in a fraction of a frozen class's time)."""

    model: str
    completion: Completion
    cost_usd: float | None

    @property
    def empty(self) -> bool:
        """Whether any answer says nothing (stored before empty answers became errors)."""
        return any(map(_SAYS_NOTHING, self.completion.answers))

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "v": VALUE_VERSION,
            "model": self.model,
            "answers": [records.answer_json(answer) for answer in self.completion.answers],
            "usage": self.completion.usage.to_record(),
            "cost_usd": self.cost_usd,
        }
        return orjson.dumps(value)

    @classmethod
    def decode(cls, raw: bytes) -> StoredAnswer:
        """Raises ValueError (or KeyError, TypeError) for anything `encode` did not write."""
        value = orjson.loads(raw)
        if type(value) is not dict:
            raise ValueError("not a cached answer")
        version = value.get("v")
        if version == VALUE_VERSION:
            answers = tuple(map(records.answer_from_json, value["answers"]))
        elif version == 1:
            answers = (records.answer_from_json(value),)
        else:
            raise ValueError("not a cached answer of this version")
        usage = value.get("usage")
        if type(usage) is not dict:
            raise ValueError("a cached answer without its usage")
        if not answers:
            raise ValueError("a cached answer without answers")
        completion = Completion.build(answers, Usage.from_record(usage))
        return cls(str(value.get("model")), completion, value.get("cost_usd"))


@dataclass(slots=True)
class Pending:
    """A key's request in flight; `record` is set before it finishes unless the run halted.

    The event lines wait on is made only when one does: most requests have no twin.
    """

    record: Result | None = None
    _finished: bool = False
    _event: anyio.Event | None = None

    async def wait(self) -> None:
        """Until the request finishes (at once if it has)."""
        if self._finished:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def finish(self) -> None:
        self._finished = True
        if self._event is not None:
            self._event.set()


class Reuse:
    """The run's cache (if any) and its requests in flight, by key."""

    def __init__(
        self,
        cache: ResilientCache | None,
        policy: CachePolicy | None = None,
        *,
        recent_answers: int = RECENT_ANSWERS,
    ) -> None:
        self.cache = cache
        self.policy = policy or CachePolicy()
        # Where answers go to be stored, in batches behind the run. open_reuse starts its
        # task; without one (a Reuse made by hand) `settle` stores them after each line.
        self.writer = (
            WriteBehind(cache, ttl_s=self.policy.ttl_s)
            if cache is not None and self.policy.write
            else None
        )
        self.in_flight: dict[str, Pending] = {}
        self._recent: OrderedDict[str, tuple[Result, int]] = OrderedDict()
        self._recent_max = recent_answers
        self._recent_bytes = 0

    def summary(self) -> dict[str, object] | None:
        """The cache's part of a run summary (None: no cache)."""
        if self.cache is None:
            return None
        counters = self.cache.statistics()
        return {
            "backend": self.cache.backend,
            "location": self.cache.location,
            "available": counters.available,
            "hits": counters.hits,
            "writes": counters.writes,
            "errors": counters.errors,
            # Entries not stored because the cache fell behind the run (never records).
            "dropped": self.writer.dropped if self.writer is not None else 0,
        }

    @property
    def reads(self) -> bool:
        """Whether the run looks answers up in a cache."""
        return self.cache is not None and self.policy.read

    def shares(self, plan: Plan) -> bool:
        """Whether an identical line's request is in flight or remembered for `plan`."""
        key = plan.key
        return plan.shared and key is not None and (key in self.in_flight or key in self._recent)

    def recent(self, key: str) -> Result | None:
        """The record of a successful answer to `key` earlier in this run, if remembered."""
        found = self._recent.get(key)
        if found is None:
            return None
        self._recent.move_to_end(key)
        return found[0]

    def remember(self, key: str, record: Result) -> None:
        if record.status != "ok" or self._recent_max <= 0:
            return
        size = _record_bytes(record)
        earlier = self._recent.pop(key, None)
        if earlier is not None:
            self._recent_bytes -= earlier[1]
        self._recent[key] = (record, size)
        self._recent_bytes += size
        while len(self._recent) > self._recent_max or self._recent_bytes > RECENT_BYTES:
            _, (_, dropped) = self._recent.popitem(last=False)
            self._recent_bytes -= dropped

    async def lookup(self, keys: Sequence[str]) -> list[StoredAnswer | None]:
        """The stored answer to each key (one read for several, where the backend can);
        one that says nothing (kept by an earlier version) is a miss."""
        if self.cache is None or not self.policy.read:
            return [None] * len(keys)
        if len(keys) == 1:
            found = [await self.cache.get_decoded(keys[0], StoredAnswer.decode)]
        else:
            found = await self.cache.get_many_decoded(keys, StoredAnswer.decode)
        for index, answer in enumerate(found):
            if answer is not None and answer.empty:
                found[index] = None
        return found

    def store_answer(
        self, key: str, model: str, answer: Answer, usage: Usage, cost_usd: float | None
    ) -> None:
        """Keep one sample's answer under its own key, with the usage and cost it counts for.

        Never waits: the entry is queued for the writer, which stores it with others.
        """
        if self.writer is not None:
            value = StoredAnswer(model, Completion((answer,), usage), cost_usd).encode()
            self.writer.put(key, value)

    async def finish(self) -> None:
        """Store every queued answer and stop the writer (the run is over)."""
        if self.writer is not None:
            await self.writer.aclose()

    async def synced(self) -> None:
        """Until the answers stored so far are in the cache (see WriteBehind.synced)."""
        if self.writer is not None:
            await self.writer.synced()

    async def settle(self) -> None:
        """Store the queued answers now if no writer task will (a Reuse made by hand)."""
        writer = self.writer
        if writer is not None and writer.pending and not writer.running:
            await writer.flush()


def _record_bytes(record: Result) -> int:
    """About how much memory a remembered record holds (its answers' text dominates)."""
    size = _RECORD_BYTES
    for answer in record.answers:
        size += len(answer.text or "") + len(answer.refusal or "")
        if answer.reasoning is not None:
            size += len(answer.reasoning.text or "") * 2  # the provider's parts repeat it
        size += sum(len(call.arguments_raw or "") + 200 for call in answer.tool_calls)
    return size


async def open_reuse(config: CacheConfig, stack: AsyncExitStack) -> Reuse:
    """The run's reuse: identical lines always share; the cache as `config` says. A cache
    that cannot be opened gives one warning and the run goes on without it.

    Answers are stored by a writer running in a task group on `stack` (cache/write_behind.py):
    when `stack` closes, what is queued is stored first, then the cache is closed.
    A `config.backend` object is used as it is, wrapped so that its failures only warn,
    and left open: it belongs to the caller and may serve other runs.
    """
    if not config.enabled:
        return Reuse(None)
    if config.backend is not None:
        given = config.backend
        # Lenient about the names: a custom cache without them still works.
        cache = ResilientCache(
            given,
            backend=str(getattr(given, "backend", None) or type(given).__name__),
            location=str(getattr(given, "location", None) or "(a Python object)"),
        )
    else:
        cache = await open_resilient(config.location or str(default_cache_file()))
        stack.push_async_callback(cache.aclose)
    policy = CachePolicy(read=not config.refresh, write=not config.read_only, ttl_s=config.ttl_s)
    reuse = Reuse(cache, policy)
    if reuse.writer is not None:
        group = await stack.enter_async_context(anyio.create_task_group())
        group.start_soon(reuse.writer.run)
        stack.push_async_callback(reuse.writer.aclose)
    return reuse


def cached_record(prompt: Prompt, model: str, answers: Sequence[StoredAnswer]) -> Result:
    """A cache hit's record: the stored answers (one per sample), at no cost."""
    if len(answers) == 1:
        completion = answers[0].completion  # the usual case: nothing to gather
    else:
        completion = Completion(
            tuple(a for stored in answers for a in stored.completion.answers),
            sum((stored.completion.usage for stored in answers), Usage()),
        )
    return records.ok_result(
        prompt, completion, model=model, attempts=0, latency_s=0.0, cost_usd=0.0, cached=True
    )


def combine_samples(
    prompt: Prompt,
    answers: Sequence[Answer | None],
    earlier: Sequence[StoredAnswer],
    parts: Sequence[Result],
) -> Result:
    """A line's record from its samples: `answers` in sample order (None where none came),
    of which `earlier` were stored by an earlier run, and the requests made now (`parts`,
    at least one). A failed request makes the record that request's error (the answers
    that did come are stored, so a rerun asks only for the rest)."""
    failed = next((part for part in parts if part.status != "ok"), None)
    if failed is not None:
        return failed
    if not earlier and len(parts) == 1:
        return parts[0]  # every answer came from one request: its record as it is
    costs = [part.cost_usd for part in parts]
    usage = sum((part.usage or Usage() for part in parts), Usage())
    usage = sum((stored.completion.usage for stored in earlier), usage)
    return Result(
        id=prompt.id,
        line=prompt.line,
        status="ok",
        model=parts[0].model,
        answers=tuple(answer for answer in answers if answer is not None),
        usage=usage,
        cost_usd=None if None in costs else round(sum(c or 0.0 for c in costs), 10),
        attempts=sum(part.attempts for part in parts),
        latency_s=max(part.latency_s for part in parts),
        metadata=prompt.metadata,
    )


def shared_record(prompt: Prompt, leader: Result) -> Result:
    """A copy of an identical line's record for `prompt`, at no cost."""
    return leader.replace(
        id=prompt.id,
        line=prompt.line,
        metadata=prompt.metadata,
        attempts=0,
        latency_s=0.0,
        deduplicated=True,
        cost_usd=None if leader.cost_usd is None else 0.0,
    )
