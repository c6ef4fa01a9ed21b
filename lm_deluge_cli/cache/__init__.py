"""The result cache: backends behind one small interface, and a wrapper that never fails a run.

``open_resilient(spec)`` is what a run uses; ``open_cache(spec)`` opens a bare backend
(for commands that should report errors). The Redis and LevelDB backends, which need
the optional ``redis`` and ``plyvel`` packages, are imported only when one is opened;
``LevelDBCache`` and ``LevelDBLockedError`` are importable from here, which imports plyvel.
"""

import importlib
from typing import TYPE_CHECKING, Any

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
    default_cache_file,
    open_cache,
    parse_spec,
)
from lm_deluge_cli.cache.sqlite import SqliteCache
from lm_deluge_cli.cache.write_behind import WriteBehind

if TYPE_CHECKING:
    from lm_deluge_cli.cache.leveldb import LevelDBCache as LevelDBCache
    from lm_deluge_cli.cache.leveldb import LevelDBLockedError as LevelDBLockedError

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
    "WriteBehind",
    "default_cache_dir",
    "default_cache_file",
    "effective_ttl",
    "open_cache",
    "open_resilient",
    "parse_spec",
]

# Not in __all__: a star import must work without plyvel.
_LAZY = ("LevelDBCache", "LevelDBLockedError")

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            return getattr(importlib.import_module("lm_deluge_cli.cache.leveldb"), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
