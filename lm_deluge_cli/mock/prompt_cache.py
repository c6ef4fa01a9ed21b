"""The mock's prompt cache, as Anthropic documents its own (Messages and Bedrock): prefixes
of the prompt marked by ``cache_control`` breakpoints, kept for 5 minutes or an hour on the
simulator's clock. No I/O; the formats read the breakpoints (`formats.anthropic_cache`).

A request reads the longest cached prefix that ends at one of its breakpoints, and writes
the prefix up to its last breakpoint when that one is not cached, as the API documents:
``cache_read_input_tokens`` is the prefix read, ``cache_creation_input_tokens`` what was
written after it (each part for the TTL of the breakpoint that ends it), and
``input_tokens`` only what follows the last breakpoint. A prefix shorter than the minimum
cacheable length is neither read nor written. A written prefix becomes readable only once
the answer that wrote it is sent, so requests that arrive together all miss and each
writes, as on the real API; a read refreshes the TTL. Entries are kept in an LRU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from lm_deluge_cli.mock.formats.chat import Breakpoint, CacheUsage

__all__ = ["MAX_ENTRIES", "ONE_HOUR_S", "PromptCache"]

# The most prefixes kept; the least recently used go first. An entry is ~100 bytes.
MAX_ENTRIES = 100_000
ONE_HOUR_S = 3600.0


@dataclass(slots=True)
class _Entry:
    ready_at: float  # readable from then: when the answer that wrote it was sent
    expires_at: float
    ttl_s: float


class PromptCache:
    """Cached prompt prefixes by digest (see the module docstring)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def use(
        self, breakpoints: Sequence[Breakpoint], now: float, answered_at: float, min_tokens: int
    ) -> CacheUsage:
        """Read the longest cached prefix and write the rest, for a request that arrives at
        `now` and is answered at `answered_at`; breakpoints in prompt order."""
        eligible = [point for point in breakpoints if point.tokens >= min_tokens]
        hit = -1
        for index in range(len(eligible) - 1, -1, -1):
            entry = self._live(eligible[index].key, now)
            if entry is not None and entry.ready_at <= now:
                hit = index
                break
        read = eligible[hit].tokens if hit >= 0 else 0
        for point in eligible[: hit + 1]:
            entry = self._live(point.key, now)
            if entry is not None:
                # A read keeps the prefixes it used alive for their TTL from now on.
                entry.expires_at = max(entry.expires_at, now + entry.ttl_s)
        written_5m = written_1h = 0
        covered = read
        for point in eligible[hit + 1 :]:
            part = max(0, point.tokens - covered)
            covered = max(covered, point.tokens)
            if point.ttl_s >= ONE_HOUR_S:
                written_1h += part
            else:
                written_5m += part
            self._write(point, now, answered_at)
        return CacheUsage(read, written_5m, written_1h)

    def _live(self, key: bytes, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _write(self, point: Breakpoint, now: float, answered_at: float) -> None:
        entry = self._live(point.key, now)
        if entry is None:
            self._entries[point.key] = _Entry(answered_at, answered_at + point.ttl_s, point.ttl_s)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            return
        # Written again before the first write was readable (or for a longer TTL).
        entry.ready_at = min(entry.ready_at, answered_at)
        entry.ttl_s = max(entry.ttl_s, point.ttl_s)
        entry.expires_at = max(entry.expires_at, answered_at + point.ttl_s)
