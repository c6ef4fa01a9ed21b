"""LLMClient(cache=<a Cache object>): one store shared by every call, left open by them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import lm_deluge_cli.runner as runner_module
from lm_deluge_cli import LLMClient
from lm_deluge_cli.cache import CacheStats, MemoryCache
from lm_deluge_cli.config import CacheConfig
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[RunStats]:
    """The statistics of every call of any client made during the test, in order."""
    made: list[RunStats] = []

    def capture(*args: Any, **kwargs: Any) -> RunStats:
        stats = RunStats(*args, **kwargs)
        made.append(stats)
        return stats

    monkeypatch.setattr(runner_module, "RunStats", capture)
    return made


class DictCache:
    """The least a cache needs: the Cache methods over a plain dict, counting calls."""

    backend = "dict"
    location = "a test's dict"

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.gets = 0
        self.closed = False

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.entries.get(key)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.entries[key] = value

    async def stats(self) -> CacheStats:
        return CacheStats(self.backend, self.location, len(self.entries), None)

    async def clear(self) -> int:
        removed = len(self.entries)
        self.entries.clear()
        return removed

    async def aclose(self) -> None:
        self.closed = True


def test_a_memory_cache_answers_the_second_call_of_a_client(runs: list[RunStats]) -> None:
    store = MemoryCache()
    client = LLMClient("mock:fast", cache=store)
    first = client.process_prompts_sync(["a", "b"])
    second = client.process_prompts_sync(["a", "b", "a"])
    assert [r.cached for r in first] == [False, False]
    assert [r.cached for r in second] == [True, True, True]
    assert [r.completion for r in second] == [r.completion for r in [*first, first[0]]]
    assert [r.requests for r in runs] == [2, 0]
    # Still open: the client does not close what it was given.
    assert anyio.run(store.stats).entries == 2


def test_a_memory_spec_still_lasts_one_call(runs: list[RunStats]) -> None:
    client = LLMClient("mock:fast", cache="memory:")
    client.process_prompts_sync(["a"])
    client.process_prompts_sync(["a"])
    assert [r.requests for r in runs] == [1, 1]


@pytest.mark.anyio
async def test_clients_given_one_cache_share_it(runs: list[RunStats]) -> None:
    store = MemoryCache()
    await LLMClient("mock:fast", cache=store).process_prompts_async(["x", "y"])
    other = LLMClient("mock:fast", cache=store, max_concurrent_requests=3)
    again = await other.process_prompts_async(["y", "x"])
    assert all(r.cached for r in again)
    assert [r.requests for r in runs] == [2, 0]


def test_a_custom_object_meeting_the_protocol_works(runs: list[RunStats]) -> None:
    store = DictCache()
    client = LLMClient("mock:fast", cache=store)
    client.process_prompts_sync(["a", "b"])
    assert len(store.entries) == 2
    again = client.process_prompts_sync(["b", "a"])
    assert all(r.cached for r in again)
    assert [r.requests for r in runs] == [2, 0]
    assert store.gets == 4 and not store.closed


def test_a_broken_cache_object_only_warns(
    runs: list[RunStats], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(DictCache):
        async def get(self, key: str) -> bytes | None:
            raise OSError("the disk went away")

    results = LLMClient("mock:fast", cache=Broken()).process_prompts_sync(["a", "b"])
    assert all(r.status == "ok" and not r.cached for r in results)
    assert "the disk went away" in caplog.text and "dict" in caplog.text


def test_read_only_and_refresh_apply_to_a_cache_object() -> None:
    store = MemoryCache()
    config = CacheConfig(backend=store, read_only=True)
    assert config.enabled and config.location is None
    # The object is compared but neither hashed nor shown.
    assert config == CacheConfig(backend=store, read_only=True)
    assert config != CacheConfig(backend=MemoryCache(), read_only=True)
    assert hash(config) == hash(CacheConfig(read_only=True))
    assert "MemoryCache" not in repr(config)


def test_cache_locations_and_bad_values(tmp_path: Path) -> None:
    assert LLMClient("mock:fast").cache == CacheConfig(enabled=False)
    by_path = LLMClient("mock:fast", cache=tmp_path / "answers").cache
    assert by_path.location == str(tmp_path / "answers") and by_path.backend is None
    with pytest.raises(ConfigError, match="MemoryCache"):
        LLMClient("mock:fast", cache=42)  # type: ignore[arg-type]
