"""Prompt-cache warm-up: the first request for each cached prefix goes alone.

A provider's prompt cache is written by the first request with a given prefix and read by
the ones that start after it has answered. With hundreds of requests in flight, every line
sharing one long system prompt starts at once, all miss, and each pays to write the cache
(1.25× the input price on Anthropic). So, when prompt caching is on, the first request for a
prefix is the leader: the others with the same prefix wait for its answer (at most
`wait_s`), then go and read the cache. A leader that fails hands the lead to the next one.
A prefix unused for longer than the cache keeps it is warmed again.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from lm_deluge_cli.types import Message, Prompt, PromptCache

__all__ = ["Admission", "PrefixGate", "cache_prefix"]
# Prefixes remembered at once (least recently used go first): bounded on any input.
MAX_PREFIXES = 10_000
_TTL_S = {"5m": 300.0, "1h": 3600.0}


def cache_prefix(
    provider: str, wire_id: str, prompt: Prompt, prompt_cache: PromptCache | None
) -> tuple[str, float] | None:
    """(a digest of what a request's cache breakpoint covers, how long the cache keeps it),
    or None when the request has no breakpoint worth warming: the job's ``system``,
    ``tools`` or ``system_and_tools`` placement, or the last ``cache_control`` marker a line
    carries itself (``last_user`` covers each line's own question: nothing to share)."""
    tools = prompt.extra_body.get("tools") or []
    messages = prompt.messages
    marked = _last_marked(messages)
    if marked is not None:
        covered: Any = {"tools": tools, "messages": messages[: marked + 1]}
        ttl = _TTL_S["1h"] if _marks_hour(messages[marked]) else _TTL_S["5m"]
    elif prompt_cache is None or prompt_cache.placement == "last_user":
        return None
    elif prompt_cache.placement == "tools":
        if not tools:
            return None
        covered, ttl = {"tools": tools}, _TTL_S[prompt_cache.ttl]
    else:
        system = [m for m in messages if m.get("role") in ("system", "developer")]
        if not system and prompt_cache.placement == "system":
            return None
        covered, ttl = {"tools": tools, "system": system}, _TTL_S[prompt_cache.ttl]
    material = orjson.dumps(
        {"provider": provider, "model": wire_id, "covered": covered},
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.sha256(material).hexdigest(), ttl


def _last_marked(messages: Sequence[Message]) -> int | None:
    """The index of the last message with a cache_control marker on it or on a part."""
    for index in range(len(messages) - 1, -1, -1):
        if _marks(messages[index]):
            return index
    return None


def _marks(message: Mapping[str, Any]) -> bool:
    if "cache_control" in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and "cache_control" in part for part in content
    )


def _marks_hour(message: Mapping[str, Any]) -> bool:
    markers = [message.get("cache_control")]
    content = message.get("content")
    if isinstance(content, list):
        markers += [part.get("cache_control") for part in content if isinstance(part, dict)]
    return any(isinstance(m, dict) and m.get("ttl") == "1h" for m in markers)


@dataclass(slots=True)
class Admission:
    """A request let through; `warmed` False (an error status) says it did not warm it."""

    warmed: bool = True


@dataclass(slots=True)
class _Prefix:
    """One prefix: warm since `warm_at` (0: not yet), or being warmed by a leader."""

    leading: bool = False
    warm_at: float = 0.0
    done: anyio.Event = field(default_factory=anyio.Event)


class PrefixGate:
    """Lets the first request for each prefix go alone; the others wait for its answer."""

    def __init__(self, wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.wait_s = wait_s
        self._clock = clock
        self._prefixes: OrderedDict[str, _Prefix] = OrderedDict()
        # Requests that waited for a leader, and those that went on when the wait ran out.
        self.waited = 0
        self.timed_out = 0

    @asynccontextmanager
    async def admit(self, key: str, ttl_s: float) -> AsyncIterator[Admission]:
        """Hold a request until its prefix is warm (or it is the one to warm it); the body
        is the request. A leader whose body raises, or sets `warmed` False, lets the next
        one lead."""
        admission = Admission()
        deadline = self._clock() + self.wait_s
        waited = False
        while True:
            prefix = self._prefixes.get(key)
            now = self._clock()
            if prefix is None or (not prefix.leading and now - prefix.warm_at > ttl_s):
                prefix = _Prefix(leading=True)
                self._remember(key, prefix)
                break  # this request warms the prefix
            self._prefixes.move_to_end(key)
            if not prefix.leading:
                prefix.warm_at = now  # a read keeps the provider's entry alive
                yield admission
                return
            if not waited:
                waited = True
                self.waited += 1
            with anyio.move_on_after(max(0.0, deadline - now)):
                await prefix.done.wait()
            if not prefix.done.is_set():
                self.timed_out += 1
                yield admission  # waited long enough: go, and maybe write the cache too
                return
        try:
            yield admission
        except BaseException:
            admission.warmed = False
            raise
        finally:
            if admission.warmed:
                prefix.leading = False
                prefix.warm_at = self._clock()
            elif self._prefixes.get(key) is prefix:
                # Failed or cancelled: the prefix is not warm; the next request leads.
                del self._prefixes[key]
            prefix.done.set()

    def _remember(self, key: str, prefix: _Prefix) -> None:
        self._prefixes[key] = prefix
        self._prefixes.move_to_end(key)
        while len(self._prefixes) > MAX_PREFIXES:
            _, oldest = self._prefixes.popitem(last=False)
            oldest.done.set()  # anyone waiting on it goes
