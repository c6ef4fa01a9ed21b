"""A cache in one SQLite file (WAL mode), shared safely by several processes."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_TABLE", "SqliteCache"]

logger = logging.getLogger(__name__)

# Statements run on the event loop thread, so another process's write lock may stall
# the loop for at most this long; then the one entry misses or is not written.
DEFAULT_BUSY_TIMEOUT_S = 1.0
DEFAULT_TABLE = "cache_entries"

# Expired rows are deleted this many at a time, at the first write, then every
# _PURGE_EVERY writes or at the next write after a read met one, so no write stalls long.
_PURGE_BATCH = 1000
_PURGE_EVERY = 1000
# Keys per SELECT … IN (…) of get_many: well under SQLite's limit on parameters.
_MANY_PER_QUERY = 500


class SqliteCache:
    """Entries in table `table` of the SQLite file at `path` (created, with its directory).

    Expiry times are wall-clock seconds from `clock` (shared by every process on the
    machine). A statement that cannot get the write lock within `busy_timeout_s` is
    given up: a read misses, a write is skipped, and `lock_timeouts` counts it.
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = DEFAULT_TABLE,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table or '"' in table:
            raise ValueError(f"invalid table name {table!r}")
        self.location = os.path.abspath(os.fspath(path))
        self.table = table
        self.lock_timeouts = 0
        self._t = f'"{table}"'
        self._clock = clock
        self._writes = 0
        self._purge_due = True
        os.makedirs(os.path.dirname(self.location), exist_ok=True)
        # Autocommit: every statement is its own short transaction, so no lock is held
        # between calls. The connection stays on the thread running the event loop.
        self._conn = sqlite3.connect(
            self.location, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    def _setup(self) -> None:
        c = self._conn
        # Set before the first table exists; lets `clear` hand the space back.
        c.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # WAL: readers never wait for a writer, and a writer only for another writer.
        c.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses at most the last commits on power loss, never
        # consistency: right for a cache.
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t} ("
            " key TEXT PRIMARY KEY,"
            " value BLOB NOT NULL,"
            " expires_at REAL NULL,"
            " created_at REAL NOT NULL)"
        )
        c.execute(
            f'CREATE INDEX IF NOT EXISTS "{self.table}:expires_at" ON {self._t} (expires_at)'
            " WHERE expires_at IS NOT NULL"
        )

    def __repr__(self) -> str:
        return f"SqliteCache({self.location!r}, table={self.table!r})"

    @property
    def journal_mode(self) -> str:
        """The connection's journal mode (``wal`` unless the file system refused it)."""
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    async def get(self, key: str) -> bytes | None:
        try:
            row = self._conn.execute(
                f"SELECT value, expires_at FROM {self._t} WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("read", key)
                return None
            raise
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None and expires_at <= self._clock():
            self._purge_due = True
            return None
        if not isinstance(value, bytes):
            raise CorruptEntryError(f"entry is stored as {type(value).__name__}, not a blob")
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Every key's entry in a few queries (up to _MANY_PER_QUERY keys each)."""
        rows: dict[str, tuple[object, float | None]] = {}
        try:
            for start in range(0, len(keys), _MANY_PER_QUERY):
                chunk = keys[start : start + _MANY_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                for key, value, expires_at in self._conn.execute(
                    f"SELECT key, value, expires_at FROM {self._t} WHERE key IN ({marks})",
                    tuple(chunk),
                ):
                    rows[key] = (value, expires_at)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("read", f"{len(keys)} entries")
                return [None] * len(keys)
            raise
        now = self._clock()
        found: list[bytes | CorruptEntryError | None] = []
        for key in keys:
            row = rows.get(key)
            if row is None:
                found.append(None)
                continue
            value, expires_at = row
            if expires_at is not None and expires_at <= now:
                self._purge_due = True
                found.append(None)
            elif isinstance(value, bytes):
                found.append(value)
            else:
                found.append(
                    CorruptEntryError(f"entry is stored as {type(value).__name__}, not a blob")
                )
        return found

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = effective_ttl(ttl_s)
        now = self._clock()
        try:
            if ttl == 0.0:
                self._conn.execute(f"DELETE FROM {self._t} WHERE key = ?", (key,))
            else:
                expires_at = None if ttl is None else now + ttl
                self._conn.execute(
                    f"INSERT OR REPLACE INTO {self._t} (key, value, expires_at, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key, bytes(value), expires_at, now),
                )
            self._writes += 1
            if self._purge_due or self._writes % _PURGE_EVERY == 0:
                self._purge()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("write", key)
                return
            raise

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Every entry in one transaction: one commit (one fsync), not one per entry."""
        ttl = effective_ttl(ttl_s)
        now = self._clock()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if ttl == 0.0:
                    self._conn.executemany(
                        f"DELETE FROM {self._t} WHERE key = ?", [(key,) for key, _ in entries]
                    )
                else:
                    expires_at = None if ttl is None else now + ttl
                    self._conn.executemany(
                        f"INSERT OR REPLACE INTO {self._t} (key, value, expires_at, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        [(key, bytes(value), expires_at, now) for key, value in entries],
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._writes += len(entries)
            if self._purge_due or self._writes % _PURGE_EVERY < len(entries):
                self._purge()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("write", f"{len(entries)} entries")
                return
            raise

    async def delete(self, key: str) -> bool:
        cursor = self._conn.execute(f"DELETE FROM {self._t} WHERE key = ?", (key,))
        return cursor.rowcount > 0

    async def stats(self) -> CacheStats:
        (entries,) = self._conn.execute(
            f"SELECT count(*) FROM {self._t} WHERE expires_at IS NULL OR expires_at > ?",
            (self._clock(),),
        ).fetchone()
        size = 0
        for path in (self.location, self.location + "-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.path.getsize(path)
        return CacheStats(self.backend, self.location, int(entries), size)

    async def clear(self) -> int:
        removed = self._conn.execute(f"DELETE FROM {self._t}").rowcount
        self._conn.execute("PRAGMA incremental_vacuum")
        return int(removed)

    async def aclose(self) -> None:
        self._conn.close()

    def _purge(self) -> None:
        """Delete up to one batch of expired rows."""
        self._purge_due = False
        self._conn.execute(
            f"DELETE FROM {self._t} WHERE rowid IN (SELECT rowid FROM {self._t}"
            " WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
            (self._clock(), _PURGE_BATCH),
        )

    def _timed_out(self, action: str, key: str) -> None:
        self.lock_timeouts += 1
        logger.debug("cache %s of %s skipped: %s is locked", action, key, self.location)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # Extended codes (SQLITE_BUSY_SNAPSHOT, …) keep the primary code in the low byte.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
