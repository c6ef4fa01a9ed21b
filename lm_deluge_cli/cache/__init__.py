"""The result cache: backends behind one small interface, and a wrapper that never fails a run.

``open_resilient(spec)`` is what a run uses; ``open_cache(spec)`` opens a bare backend
(for commands that should report errors). The Redis backend, which needs the optional
``redis`` package, is imported only when a Redis URL is opened.
"""

from lm_deluge_cli.cache.base import Cache, CacheStats, CorruptEntryError, effective_ttl
from lm_deluge_cli.cache.disk import DiskCache
from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import (
    DEFAULT_COOL_OFF_S,
    CacheCounters,
    ResilientCache,
    open_resilient,
)
from lm_deluge_cli.cache.spec import (
    ACCEPTED_FORMS,
    CACHE_DIR_ENV,
    CacheSpec,
    default_cache_dir,
    open_cache,
    parse_spec,
)
from lm_deluge_cli.cache.sqlite import SqliteCache

__all__ = [
    "ACCEPTED_FORMS",
    "CACHE_DIR_ENV",
    "DEFAULT_COOL_OFF_S",
    "Cache",
    "CacheCounters",
    "CacheSpec",
    "CacheStats",
    "CorruptEntryError",
    "DiskCache",
    "MemoryCache",
    "ResilientCache",
    "SqliteCache",
    "default_cache_dir",
    "effective_ttl",
    "open_cache",
    "open_resilient",
    "parse_spec",
]
