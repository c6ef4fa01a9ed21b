"""A cache damaged on disk: how to recognise it, and removing its files so a new one starts.

A SQLite file (the default cache, and a diskcache directory's index) can be damaged by
a disk fault, a copy taken while it was written, or another program writing over it.
Runs go on without such a cache (see `cache.resilient`); `lm-deluge cache clear`
removes its files, but only files that are recognisably a SQLite database or this
tool's own default cache, so a `--cache` pointing at the wrong file never deletes it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
from pathlib import Path

from lm_deluge_cli.cache.spec import CacheSpec, default_cache_file

__all__ = ["DamagedCacheError", "is_damage", "remove_damaged"]

# SQLite's own codes for "not a database" and "database disk image is malformed".
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SQLITE_HEADER = b"SQLite format 3\x00"
# A SQLite file's companions: the write-ahead log, its index, a rollback journal.
_COMPANIONS = ("-wal", "-shm", "-journal")
# diskcache's index, and its value files under two levels of two-hex-digit folders.
_DISKCACHE_INDEX = "cache.db"
_HEX_PAIR = re.compile(r"[0-9a-f]{2}")


class DamagedCacheError(OSError):
    """The cache's files cannot be removed safely: the message says what to do instead."""


def is_damage(exc: BaseException) -> bool:
    """True for SQLite's "not a database" and "malformed" errors, by their codes."""
    return isinstance(exc, sqlite3.DatabaseError) and (
        getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES
    )


def remove_damaged(spec: CacheSpec) -> list[str]:
    """Remove the files of the damaged cache `spec` names; the paths removed.

    Only SQLite and diskcache caches have files this knows; for the others, and for a
    file that is neither a SQLite database nor the default cache, raises
    DamagedCacheError naming the command that removes it by hand.
    """
    if spec.backend == "sqlite":
        return _remove_sqlite(Path(spec.target))
    if spec.backend == "diskcache":
        return _remove_diskcache(Path(spec.target))
    raise DamagedCacheError(
        f"the {spec.backend} cache at {spec.location} is damaged; remove it by hand"
        + (f" (rm -r {spec.location})" if spec.backend == "leveldb" else "")
    )


def _remove_sqlite(path: Path) -> list[str]:
    if not (_has_sqlite_header(path) or _is_default(path)):
        raise DamagedCacheError(
            f"{path} is not a SQLite database, so it is left alone; if it is the cache, "
            f"damaged past recognition, delete it: rm {shlex.quote(str(path))}"
        )
    return _unlink_with_companions(path)


def _remove_diskcache(directory: Path) -> list[str]:
    index = directory / _DISKCACHE_INDEX
    if not _has_sqlite_header(index):
        raise DamagedCacheError(
            f"{index} is not a SQLite database, so {directory} is left alone; if it is the "
            f"cache, damaged past recognition, delete it: rm -r {shlex.quote(str(directory))}"
        )
    removed = _unlink_with_companions(index)
    for first in _hex_folders(directory):
        for second in _hex_folders(first):
            for value in second.glob("*.val"):
                value.unlink(missing_ok=True)
                removed.append(str(value))
            _rmdir_if_empty(second)
        _rmdir_if_empty(first)
    return removed


def _has_sqlite_header(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def _is_default(path: Path) -> bool:
    return os.path.abspath(path) == os.path.abspath(default_cache_file())


def _unlink_with_companions(path: Path) -> list[str]:
    removed = []
    for name in (str(path), *(str(path) + suffix for suffix in _COMPANIONS)):
        try:
            os.unlink(name)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def _hex_folders(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.is_dir() and _HEX_PAIR.fullmatch(p.name)]
    except OSError:
        return []


def _rmdir_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # something else lives there: leave it
        directory.rmdir()
