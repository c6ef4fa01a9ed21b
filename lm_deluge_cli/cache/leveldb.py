"""A cache in a LevelDB directory: compact and fast, but one process at a time.

Needs the optional ``plyvel`` package (``pip install 'lm-deluge-cli[leveldb]'``).
"""

from __future__ import annotations

import errno
import math
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import plyvel

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl

if sys.platform != "win32":
    import fcntl

__all__ = ["LevelDBCache", "LevelDBLockedError"]

T = TypeVar("T")

# A stored value: format version, expiry in wall-clock seconds (+inf: never), the bytes.
_FORMAT = 1
_HEADER = struct.Struct(">Bd")
# Entries the never-read expired ones are swept from, every _SWEEP_EVERY writes, and
# deletes per write batch in `clear` and `stats`.
_SWEEP_BATCH = 1000
_SWEEP_EVERY = 1000
_BATCH = 1000


class LevelDBLockedError(OSError):
    """The LevelDB directory is open in another process: LevelDB allows one at a time."""


class _Handle:
    """One open LevelDB directory, shared by every cache of this process on it."""

    def __init__(self, key: str, db: Any) -> None:
        self.key = key
        self.db = db
        self.users = 1
        self.active = 0
        self.idle = threading.Condition()
        # Held by every write, so removing an expired entry cannot remove a newer value.
        self.writing = threading.Lock()


# Directories this process has open, by real path. A second plyvel.DB on one directory
# would not only fail: its failed open closes a handle on the LOCK file, and that drops
# the lock the first one holds (POSIX record locks belong to the process), letting
# another process in. So every cache of this process on a directory shares one DB.
_HANDLES: dict[str, _Handle] = {}
_HANDLES_GUARD = threading.Lock()


class LevelDBCache:
    """Entries in the LevelDB directory at `path` (created, with its parents).

    Only one process at a time may open a directory; opening one in use elsewhere
    raises LevelDBLockedError (share a cache through SQLite or Redis instead). Within
    one process, caches on the same directory share entries. Each value is stored with
    its expiry time (wall-clock seconds from `clock`): an expired entry misses and is
    deleted when read, by `stats`, or by a sweep through the entries every thousand
    writes. `namespace` keeps a separate set of entries under the key prefix
    ``namespace:``. The directory is opened at the first call, and every call runs in
    a worker thread: a write may wait while LevelDB compacts.
    """

    backend = "leveldb"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        namespace: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if namespace is not None and (not namespace or ":" in namespace):
            raise ValueError(f"invalid namespace {namespace!r}")
        self.location = os.path.abspath(os.fspath(path))
        self.namespace = namespace
        self._prefix = b"" if namespace is None else namespace.encode() + b":"
        # Bounds of this cache's keys: a namespace's keys sort between "ns:" and "ns;".
        self._start = self._prefix or None
        self._stop = self._prefix[:-1] + b";" if self._prefix else None
        self._clock = clock
        self._handle: _Handle | None = None
        self._opening = threading.Lock()
        self._closed = False
        self._writes = 0
        self._sweep_from: bytes | None = None

    def __repr__(self) -> str:
        return f"LevelDBCache({self.location!r}, namespace={self.namespace!r})"

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, self._prefix + key.encode())

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = effective_ttl(ttl_s)
        name = self._prefix + key.encode()
        if ttl == 0.0:
            await self._run(self._delete, name)
            return
        expires_at = math.inf if ttl is None else self._clock() + ttl
        await self._run(self._put, name, _HEADER.pack(_FORMAT, expires_at) + bytes(value))

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete, self._prefix + key.encode())

    async def stats(self) -> CacheStats:
        return await self._run(self._stats)

    async def clear(self) -> int:
        return await self._run(self._clear)

    async def aclose(self) -> None:
        """Release this cache's share of the directory; the last one closes it."""
        await anyio.to_thread.run_sync(self._close)

    # -- in a worker thread ----------------------------------------------------------

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self._call, call, *args)

    def _call(self, call: Callable[..., T], *args: Any) -> T:
        with self._opening:
            if self._closed:
                raise RuntimeError(f"the LevelDB cache at {self.location} is closed")
            if self._handle is None:
                self._handle = _acquire(self.location)
            handle = self._handle
            # Counted before the lock is let go, so a concurrent aclose waits for it.
            with handle.idle:
                handle.active += 1
        try:
            return call(handle, *args)
        finally:
            with handle.idle:
                handle.active -= 1
                handle.idle.notify_all()

    def _close(self) -> None:
        with self._opening:
            handle, self._handle, self._closed = self._handle, None, True
        if handle is not None:
            _release(handle)

    def _get(self, handle: _Handle, name: bytes) -> bytes | None:
        try:
            raw = handle.db.get(name)
        except plyvel.CorruptionError as exc:
            # A damaged block: deleting the entry writes a newer record that hides it.
            raise CorruptEntryError(f"LevelDB cannot read the entry: {exc}") from exc
        if raw is None:
            return None
        value, expires_at = _decode(raw)
        if expires_at <= self._clock():
            with handle.writing:
                if handle.db.get(name) == raw:
                    handle.db.delete(name)
            return None
        return value

    def _put(self, handle: _Handle, name: bytes, raw: bytes) -> None:
        with handle.writing:
            handle.db.put(name, raw)
            self._writes += 1
            if self._writes % _SWEEP_EVERY == 0:
                self._sweep(handle)

    def _delete(self, handle: _Handle, name: bytes) -> bool:
        with handle.writing:
            existed = handle.db.get(name) is not None
            handle.db.delete(name)
        return existed

    def _stats(self, handle: _Handle) -> CacheStats:
        now = self._clock()
        entries = 0
        with handle.writing, _Deleter(handle.db) as expired:
            for name, raw in self._items(handle):
                if _expires_at(raw) <= now:
                    expired.add(name)
                else:
                    entries += 1
        size = 0
        with os.scandir(self.location) as files:
            for entry in files:
                if entry.is_file(follow_symlinks=False):
                    size += entry.stat(follow_symlinks=False).st_size
        return CacheStats(self.backend, self.location, entries, size)

    def _clear(self, handle: _Handle) -> int:
        with handle.writing, _Deleter(handle.db) as removed:
            for name, _ in self._items(handle):
                removed.add(name)
        if removed.count:
            # Hands the space back now rather than at LevelDB's next compactions.
            handle.db.compact_range(start=self._start, stop=self._stop)
        return removed.count

    def _sweep(self, handle: _Handle) -> None:
        """Delete the expired entries among the next batch after the last sweep's."""
        now = self._clock()
        start = max(self._sweep_from or b"", self._start or b"") or None
        seen = 0
        last = None
        with _Deleter(handle.db) as expired:
            for name, raw in self._items(handle, start=start):
                if _expires_at(raw) <= now:
                    expired.add(name)
                seen += 1
                last = name
                if seen >= _SWEEP_BATCH:
                    break
        # After the last entry, the next sweep starts over.
        self._sweep_from = last if seen >= _SWEEP_BATCH else None

    def _items(self, handle: _Handle, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """This cache's entries in key order, from after `start` (else the first)."""
        with handle.db.iterator(
            start=start or self._start, stop=self._stop, include_start=start is None
        ) as it:
            for name, raw in it:
                # Without a namespace, a name with ":" is a namespace's entry, not ours.
                if b":" not in name[len(self._prefix) :]:
                    yield name, raw


class _Deleter:
    """Deletes the names it is given in write batches; `count` is how many."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.count = 0
        self._names: list[bytes] = []

    def __enter__(self) -> _Deleter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.flush()

    def add(self, name: bytes) -> None:
        self._names.append(name)
        self.count += 1
        if len(self._names) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        # Iterators read a snapshot, so deleting while one is open is safe.
        with self.db.write_batch() as batch:
            for name in self._names:
                batch.delete(name)
        self._names.clear()


def _decode(raw: bytes) -> tuple[bytes, float]:
    """The value and its expiry time; CorruptEntryError for anything `set` did not write."""
    if len(raw) < _HEADER.size:
        raise CorruptEntryError(f"entry of {len(raw)} bytes is shorter than its header")
    version, expires_at = _HEADER.unpack_from(raw)
    if version != _FORMAT or math.isnan(expires_at):
        raise CorruptEntryError(f"entry in format {version}, not {_FORMAT}")
    return raw[_HEADER.size :], float(expires_at)


def _expires_at(raw: bytes) -> float:
    """An entry's expiry time; an entry that cannot be read counts as expired."""
    try:
        return _decode(raw)[1]
    except CorruptEntryError:
        return -math.inf


def _acquire(location: str) -> _Handle:
    key = os.path.realpath(location)
    # Opened under the guard: a second thread waits for the first one's DB and shares it.
    with _HANDLES_GUARD:
        handle = _HANDLES.get(key)
        if handle is not None:
            handle.users += 1
            return handle
        handle = _HANDLES[key] = _Handle(key, _open_db(location))
        return handle


def _release(handle: _Handle) -> None:
    # Closed under the guard, so no other thread opens the directory before it is free.
    with _HANDLES_GUARD:
        handle.users -= 1
        if handle.users > 0:
            return
        del _HANDLES[handle.key]
        with handle.idle:
            handle.idle.wait_for(lambda: handle.active == 0)
            handle.db.close()


def _open_db(location: str) -> Any:
    # LevelDB creates the directory but not its parents; both get the usual modes
    # (0o777 and 0o666 for files, less the umask), as the other backends' files do.
    os.makedirs(os.path.dirname(location), exist_ok=True)
    try:
        return plyvel.DB(location, create_if_missing=True)
    except plyvel.IOError as exc:
        if not _locked_elsewhere(location):
            raise
        raise LevelDBLockedError(
            f"the LevelDB cache at {location} is in use by another process, and LevelDB "
            "allows one process at a time; to share a cache between processes, use a "
            "SQLite file (--cache PATH.sqlite) or Redis (--cache redis://HOST:PORT/DB)"
        ) from exc


def _locked_elsewhere(location: str) -> bool:
    """Whether another process holds LevelDB's lock on the directory, asked of the OS.

    Only called while this process has no DB open there (see _HANDLES), so closing our
    handle on the LOCK file releases nothing of ours.
    """
    if sys.platform == "win32":
        return False
    try:
        fd = os.open(os.path.join(location, "LOCK"), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EACCES, errno.EAGAIN)
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
