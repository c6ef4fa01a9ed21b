"""From a spec string to a backend; the default cache directory; specs we refuse."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lm_deluge_cli.cache import (
    ACCEPTED_FORMS,
    DiskCache,
    MemoryCache,
    SqliteCache,
    default_cache_dir,
    open_cache,
    parse_spec,
)
from lm_deluge_cli.errors import ConfigError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("spec", "backend"),
    [
        ("memory:", "memory"),
        ("MEMORY:", "memory"),
        ("redis://localhost:6379/0", "redis"),
        ("rediss://cache.example.com:6380", "redis"),
        ("REDIS://localhost", "redis"),
        ("unix:///run/redis.sock", "redis"),
        ("results.sqlite", "sqlite"),
        ("results.sqlite3", "sqlite"),
        ("results.db", "sqlite"),
        ("RESULTS.DB", "sqlite"),
        ("cache-dir", "diskcache"),
        ("some/deeper/dir", "diskcache"),
        ("cache.sqlite.d", "diskcache"),
        ("c:/looks/like/a/drive", "diskcache"),
    ],
)
def test_the_spec_picks_the_backend(spec: str, backend: str) -> None:
    assert parse_spec(spec).backend == backend


def test_paths_are_absolute_and_expand_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_spec("~/c.sqlite").location == str(tmp_path / "home" / "c.sqlite")
    # The working directory is tmp_path (see the shared conftest).
    assert parse_spec("rel/../dir").location == str(tmp_path / "dir")


def test_an_existing_directory_with_a_sqlite_suffix_stays_a_diskcache(tmp_path: Path) -> None:
    (tmp_path / "old.db").mkdir()
    assert parse_spec(str(tmp_path / "old.db")).backend == "diskcache"


async def test_open_cache_opens_the_backend_it_names(tmp_path: Path) -> None:
    disk = open_cache(str(tmp_path / "d"))
    lite = open_cache(str(tmp_path / "c.sqlite3"))
    mem = open_cache("memory:")
    assert isinstance(disk, DiskCache) and disk.location == str(tmp_path / "d")
    assert isinstance(lite, SqliteCache) and lite.location == str(tmp_path / "c.sqlite3")
    assert isinstance(mem, MemoryCache) and mem.location == "memory:"
    assert (tmp_path / "d" / "cache.db").is_file()
    assert (tmp_path / "c.sqlite3").is_file()
    for cache in (disk, lite, mem):
        await cache.aclose()


def test_a_redis_spec_does_not_connect_until_used() -> None:
    pytest.importorskip("redis")
    cache = open_cache("redis://:pw@192.0.2.1:6379/0")  # TEST-NET: nothing there
    assert cache.location == "redis://:***@192.0.2.1:6379/0"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "memory:big",
        "memory://",
        "redis:localhost:6379",
        "unix:/run/redis.sock",
        "http://cache.example.com",
        "s3://bucket/cache",
        "file:///var/cache/answers",
    ],
)
def test_malformed_specs_say_what_is_accepted(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_cache(spec)
    assert ACCEPTED_FORMS in str(info.value)


def test_an_invalid_redis_url_is_a_config_error_without_the_password() -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigError) as info:
        open_cache("redis://:hunter2@localhost:notaport/0")
    message = str(info.value)
    assert "hunter2" not in message
    assert "invalid Redis URL" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("namespace", ["", "a b", "../up", "x" * 65, "-lead", "a:b", "ü"])
def test_invalid_namespaces_are_refused(namespace: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        open_cache(str(tmp_path / "d"), namespace=namespace)


def test_a_redis_url_without_the_redis_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import fail, as if the package were missing.
    monkeypatch.setitem(sys.modules, "lm_deluge_cli.cache.redis", None)
    with pytest.raises(ConfigError, match=r"pip install 'lm-deluge-cli\[redis\]'") as info:
        open_cache("redis://:pw@localhost/0")
    assert "pw@" not in str(info.value)


class TestDefaultCacheDir:
    def test_the_explicit_variable_wins(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LM_DELUGE_CACHE_DIR", str(tmp_path / "explicit"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_dir() == tmp_path / "explicit"

    def test_then_xdg_cache_home(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LM_DELUGE_CACHE_DIR", "")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_dir() == tmp_path / "xdg" / "lm-deluge"

    @pytest.mark.parametrize("xdg", [None, "", "relative/path"])
    def test_then_the_home_directory(
        self, xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.delenv("LM_DELUGE_CACHE_DIR", raising=False)
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert default_cache_dir() == tmp_path / ".cache" / "lm-deluge"

    def test_the_variable_expands_the_home_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("LM_DELUGE_CACHE_DIR", "~/my-cache")
        assert default_cache_dir() == tmp_path / "my-cache"
