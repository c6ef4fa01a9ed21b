"""Answers paid for once: cache hits, and identical lines of one run sharing one request.

A prompt's request is keyed (`cache.key`) by the model it goes to, what it asks and the
sampling sent. Before anything is sent the key is looked up in the cache; a hit becomes
the line's record at no cost, without touching the rate limiters. While a key's request
is in flight, other lines with the same key wait for it and copy its record (marked
``deduplicated``) instead of sending their own; so do later lines, while the answer is
among the run's most recent `RECENT_ANSWERS` (memory stays bounded on any input; further
apart, the cache serves them). Only successful answers are stored or remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from lm_deluge_cli.cache.resilient import ResilientCache, open_resilient
from lm_deluge_cli.cache.spec import default_cache_dir
from lm_deluge_cli.config import CacheConfig
from lm_deluge_cli.io import records
from lm_deluge_cli.types import Completion, Prompt, Usage

__all__ = ["CachePolicy", "Pending", "Reuse", "StoredAnswer", "open_reuse"]

# Bumped when the stored value's shape changes: older values then read as corrupt (a miss).
VALUE_VERSION = 1
# How many successful answers a run remembers for identical later lines.
RECENT_ANSWERS = 10_000


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What the run does with the cache: read hits, write answers, and for how long."""

    read: bool = True
    write: bool = True
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What the cache keeps of a successful answer."""

    model: str
    completion: Completion
    cost_usd: float | None

    def encode(self) -> bytes:
        value: dict[str, Any] = {
            "v": VALUE_VERSION,
            "model": self.model,
            "completion": self.completion.text,
            "finish_reason": self.completion.finish_reason,
            "usage": self.completion.usage.to_record(),
            "cost_usd": self.cost_usd,
        }
        if self.completion.logprobs is not None:
            value["logprobs"] = self.completion.logprobs
        return orjson.dumps(value)

    @classmethod
    def decode(cls, raw: bytes) -> StoredAnswer:
        """Raises ValueError for anything that is not a value `encode` wrote."""
        value = orjson.loads(raw)
        if not isinstance(value, dict) or value.get("v") != VALUE_VERSION:
            raise ValueError("not a cached answer of this version")
        text, usage = value.get("completion"), value.get("usage")
        if not (text is None or isinstance(text, str)) or not isinstance(usage, dict):
            raise ValueError("a cached answer without its completion or usage")
        completion = Completion(
            text, value.get("finish_reason"), Usage.from_record(usage), value.get("logprobs")
        )
        return cls(str(value.get("model")), completion, value.get("cost_usd"))

    @classmethod
    def from_record(cls, record: records.Record) -> StoredAnswer:
        completion = Completion(
            record["completion"],
            record["finish_reason"],
            Usage.from_record(record["usage"] or {}),
            record.get("logprobs"),
        )
        return cls(record["model"], completion, record["cost_usd"])


@dataclass(slots=True)
class Pending:
    """A key's request in flight; `record` is set before `done` unless the run halted."""

    done: anyio.Event = field(default_factory=anyio.Event)
    record: records.Record | None = None


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
        self.in_flight: dict[str, Pending] = {}
        self._recent: OrderedDict[str, records.Record] = OrderedDict()
        self._recent_max = recent_answers

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
        }

    def recent(self, key: str) -> records.Record | None:
        """The record of a successful answer to `key` earlier in this run, if remembered."""
        record = self._recent.get(key)
        if record is not None:
            self._recent.move_to_end(key)
        return record

    def remember(self, key: str, record: records.Record) -> None:
        if record["status"] != "ok" or self._recent_max <= 0:
            return
        self._recent[key] = record
        self._recent.move_to_end(key)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)

    async def lookup(self, key: str) -> StoredAnswer | None:
        if self.cache is None or not self.policy.read:
            return None
        return await self.cache.get_decoded(key, StoredAnswer.decode)

    async def store(self, key: str, record: records.Record) -> None:
        if self.cache is None or not self.policy.write or record["status"] != "ok":
            return
        answer = StoredAnswer.from_record(record)
        await self.cache.set(key, answer.encode(), self.policy.ttl_s)


async def open_reuse(config: CacheConfig, stack: AsyncExitStack) -> Reuse:
    """The run's reuse: identical lines always share; the cache as `config` says. A cache
    that cannot be opened gives one warning and the run goes on without it.

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
        cache = await open_resilient(config.location or str(default_cache_dir()))
        stack.push_async_callback(cache.aclose)
    policy = CachePolicy(read=not config.refresh, write=not config.read_only, ttl_s=config.ttl_s)
    return Reuse(cache, policy)


def cached_record(prompt: Prompt, model: str, answer: StoredAnswer) -> records.Record:
    """A cache hit's record: the stored answer, at no cost."""
    return records.ok_record(
        prompt,
        answer.completion,
        model=model,
        attempts=0,
        latency_s=0.0,
        cost_usd=0.0,
        cached=True,
    )


def shared_record(prompt: Prompt, leader: records.Record) -> records.Record:
    """A copy of an identical line's record for `prompt`, at no cost."""
    record = dict(leader)
    record.update(
        id=prompt.id,
        line=prompt.line,
        metadata=prompt.metadata,
        attempts=0,
        latency_s=0.0,
        deduplicated=True,
    )
    if record["cost_usd"] is not None:
        record["cost_usd"] = 0.0
    return record
