"""From a cache spec (a path, ``leveldb:PATH``, a Redis URL or ``memory:``) to an open backend.

Also the default cache directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lm_deluge_cli.cache.base import Cache
from lm_deluge_cli.cache.disk import DiskCache
from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.sqlite import DEFAULT_TABLE, SqliteCache
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.redaction import redact_url, scrub, url_secrets

__all__ = [
    "ACCEPTED_FORMS",
    "CACHE_DIR_ENV",
    "LEVELDB_SUFFIX",
    "MEMORY_SPEC",
    "REDIS_SCHEMES",
    "SQLITE_SUFFIXES",
    "CacheSpec",
    "default_cache_dir",
    "default_cache_file",
    "open_cache",
    "parse_spec",
]

CACHE_DIR_ENV = "LM_DELUGE_CACHE_DIR"
# The default cache: one SQLite file in the cache directory. Chosen by measurement over
# diskcache (bench/bench_cache.py): a third of the CPU per stored entry, batched writes,
# lock-free reads, a small fixed page cache.
DEFAULT_CACHE_FILE = "results.sqlite"
MEMORY_SPEC = "memory:"
REDIS_SCHEMES = ("redis", "rediss", "unix")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
LEVELDB_SUFFIX = ".leveldb"
ACCEPTED_FORMS = (
    "a directory (diskcache), a file ending in .sqlite, .sqlite3 or .db (SQLite), "
    "leveldb:PATH or a directory ending in .leveldb (LevelDB, one process at a time), "
    "a redis://, rediss:// or unix:// URL (Redis), or memory: (in this process only)"
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def default_cache_dir() -> Path:
    """``$LM_DELUGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lm-deluge``, else ``~/.cache/lm-deluge``.

    An empty variable counts as unset, and so does a relative ``XDG_CACHE_HOME`` (the
    XDG spec says to ignore it).
    """
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "lm-deluge"
    return Path.home() / ".cache" / "lm-deluge"


def default_cache_file() -> Path:
    """The default cache: ``results.sqlite`` in `default_cache_dir()`."""
    return default_cache_dir() / DEFAULT_CACHE_FILE


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """A parsed cache spec: which backend, where (for display), and how to open it.

    `location` is what the opened cache will report: an absolute path, ``memory:``, or
    the Redis URL with its password masked.
    """

    backend: str
    location: str
    target: str
    namespace: str | None = None

    def open(self) -> Cache:
        """Open the store; raises what the backend raises (OSError, sqlite3.Error, …)."""
        if self.backend == "memory":
            return MemoryCache()
        if self.backend == "redis":
            return _open_redis(self.target, self.namespace)
        if self.backend == "leveldb":
            return _open_leveldb(self.target, self.namespace)
        if self.backend == "sqlite":
            ns = self.namespace
            return SqliteCache(
                self.target, table=DEFAULT_TABLE if ns is None else f"{DEFAULT_TABLE}:{ns}"
            )
        return DiskCache(self.target)


def parse_spec(spec: str, *, namespace: str | None = None) -> CacheSpec:
    """Read a cache spec (see ACCEPTED_FORMS) without touching the store.

    A path ending in a SQLite suffix is a SQLite file unless it is an existing
    directory; ``leveldb:PATH`` and a path ending in ``.leveldb`` are LevelDB
    directories; any other path is a diskcache directory; ``~`` is expanded.
    `namespace` keeps a separate set of entries in the same store: a subdirectory, a
    table or a key prefix (ignored by ``memory:``, whose caches never share). Raises
    ConfigError for a malformed spec or namespace.
    """
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        raise ConfigError(
            f"invalid cache namespace {namespace!r}: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    text = spec.strip()
    if not text:
        raise ConfigError(f"the cache location is empty; give {ACCEPTED_FORMS}")
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else None
    rest = text[match.end() :] if match else text
    if scheme in REDIS_SCHEMES:
        if not rest.startswith("//"):
            raise ConfigError(
                f"invalid cache location {redact_url(text)!r}: a Redis URL starts with "
                f"{scheme}://; give {ACCEPTED_FORMS}"
            )
        return CacheSpec("redis", redact_url(text), text, namespace)
    if scheme == "memory":
        if rest:
            raise ConfigError(
                f"invalid cache location {text!r}: write just 'memory:'; give {ACCEPTED_FORMS}"
            )
        return CacheSpec("memory", MEMORY_SPEC, MEMORY_SPEC, namespace)
    if scheme == "leveldb":
        if not rest.strip() or rest.startswith("//"):
            raise ConfigError(
                f"invalid cache location {text!r}: write leveldb:PATH, PATH being the "
                f"LevelDB directory; give {ACCEPTED_FORMS}"
            )
        path = Path(os.path.abspath(Path(rest.strip()).expanduser()))
        return CacheSpec("leveldb", str(path), str(path), namespace)
    if match and rest.startswith("//"):
        raise ConfigError(
            f"unsupported cache location {redact_url(text)!r} ({scheme}:// is not a cache "
            f"backend); give {ACCEPTED_FORMS}"
        )
    path = Path(os.path.abspath(Path(text).expanduser()))
    if path.suffix.lower() in SQLITE_SUFFIXES and not path.is_dir():
        return CacheSpec("sqlite", str(path), str(path), namespace)
    if path.suffix.lower() == LEVELDB_SUFFIX:
        return CacheSpec("leveldb", str(path), str(path), namespace)
    if namespace is not None:
        path = path / "namespaces" / namespace
    return CacheSpec("diskcache", str(path), str(path), namespace)


def open_cache(spec: str, *, namespace: str | None = None) -> Cache:
    """Open the cache that `spec` names (see `parse_spec` and ACCEPTED_FORMS).

    Raises ConfigError for a malformed spec or namespace, or a Redis URL (a LevelDB
    directory) when the redis (plyvel) package is missing; a store that cannot be
    opened raises what the backend raised (OSError, sqlite3.Error, …). Redis and
    LevelDB caches open at their first call, so an unreachable server or a LevelDB
    directory in use by another process shows up there.
    """
    return parse_spec(spec, namespace=namespace).open()


def _open_redis(url: str, namespace: str | None) -> Cache:
    try:
        from lm_deluge_cli.cache.redis import DEFAULT_PREFIX, RedisCache
    except ImportError as exc:
        raise ConfigError(
            f"the cache at {redact_url(url)} needs the redis package: "
            "pip install 'lm-deluge-cli[redis]'"
        ) from exc
    prefix = DEFAULT_PREFIX if namespace is None else f"{DEFAULT_PREFIX}{namespace}:"
    try:
        return RedisCache(url, prefix=prefix)
    except ValueError as exc:
        reason = scrub(str(exc), url_secrets(url))
        # From None: the original message may quote the URL, password included.
        raise ConfigError(
            f"invalid Redis URL {redact_url(url)!r}: {reason}; give {ACCEPTED_FORMS}"
        ) from None


def _open_leveldb(path: str, namespace: str | None) -> Cache:
    try:
        from lm_deluge_cli.cache.leveldb import LevelDBCache
    except ImportError as exc:
        raise ConfigError(
            "the LevelDB cache needs the plyvel package: pip install 'lm-deluge-cli[leveldb]'"
        ) from exc
    return LevelDBCache(path, namespace=namespace)
