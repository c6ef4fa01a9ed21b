"""A cache in one SQLite file (WAL mode), shared safely by several processes."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

import anyio
import orjson

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl

__all__ = [
    "CHECKPOINT_EVERY_ENTRIES",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_TABLE",
    "PAGE_CACHE_KIB",
    "WAL_AUTOCHECKPOINT_PAGES",
    "SqliteCache",
]

logger = logging.getLogger(__name__)

# How long a statement waits for another process's write lock before it gives up (the
# entries miss or are not written). Statements run in worker threads, so a wait slows
# only the cache, never the requests.
DEFAULT_BUSY_TIMEOUT_S = 1.0
# Each connection's page cache: the file may grow to gigabytes, memory must not.
PAGE_CACHE_KIB = 2048
DEFAULT_TABLE = "cache_entries"

# Expired rows are deleted this many at a time, at the first write, then every
# _PURGE_EVERY writes or at the next write after a read met one, so no write stalls long.
_PURGE_BATCH = 1000
_PURGE_EVERY = 1000
# Keys per SELECT … IN (…) of get_many: well under SQLite's limit on parameters.
_MANY_PER_QUERY = 500
# Rows per INSERT of set_many (four parameters each).
_ROWS_PER_INSERT = 200
# The WAL is copied into the file (a checkpoint) by a thread of its own, after every
# this many entries written (about 20-30 MiB of WAL): a copy writes pages all over the
# file and syncs it, and took 0.4-1.4 s at a million entries. Done by the writer, as
# SQLite does by default, that stalled the writes long enough for a run at thousands of
# lines a second to fill the queue before the cache (engine/write_behind) and drop
# entries, which a rerun then paid for again. A PASSIVE checkpoint lets writes go on.
CHECKPOINT_EVERY_ENTRIES = 2_000
# What the writer itself still copies at (in pages) if the checkpoint thread falls that far
# behind: the WAL cannot grow without bound. (SQLite's default is 1,000.)
WAL_AUTOCHECKPOINT_PAGES = 8192
# Copies in a row that one checkpoint makes at most, each of what came in during the last.
_COPIES_PER_CHECKPOINT = 8
# A key of 64 lower-case hex digits (the SHA-256 of every key cache/key.py makes) is
# stored as its 32 bytes: a smaller index, cheaper to insert into at random.
_HEX_KEY = re.compile(r"[0-9a-f]{64}")

# Why statements here return one row and insert many rows at once: sqlite3 lets go of the
# GIL for every step of a statement (each row read, each executemany row) and must take
# it back after. In a worker thread beside a busy event loop, taking it back waits for
# the loop's thread to yield it (up to the interpreter's switch interval, 5 ms), so 500
# rows written with executemany took seconds where one statement takes milliseconds.


class SqliteCache:
    """Entries in table `table` of the SQLite file at `path` (created, with its directory).

    Every statement runs in a worker thread, never on the event loop: reads on one
    connection, writes on another, so that in WAL mode a read never waits for a write
    (ours or another process's). Expiry times are wall-clock seconds from `clock`
    (shared by every process on the machine). A statement that cannot get the write
    lock within `busy_timeout_s` is given up: a read misses, a write is skipped, and
    `lock_timeouts` counts it.
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
        self._unchecked = 0  # entries written since the last checkpoint was asked for
        self._purge_due = True
        os.makedirs(os.path.dirname(self.location), exist_ok=True)
        # Autocommit: every statement is its own short transaction unless set_many opens
        # one, so no lock is held between calls. Each connection is used by one thread
        # at a time (its lock), whichever worker thread that is.
        self._writer = self._connect(busy_timeout_s)
        self._write_lock = threading.Lock()
        try:
            self._setup()
            self._reader = self._connect(busy_timeout_s)
        except BaseException:
            self._writer.close()
            raise
        self._checkpointer = _Checkpointer(self._connect(busy_timeout_s))
        self._read_lock = threading.Lock()

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.location, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        # Memory stays flat however big the file grows: a small page cache, no mapping.
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        conn.execute("PRAGMA mmap_size = 0")
        return conn

    def _setup(self) -> None:
        c = self._writer
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
        c.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        # Files written before keys were stored as bytes hold them as hex text: those are
        # read too (found through the key's index, not a scan), so no answer is paid twice.
        self._text_keys = (
            c.execute(
                f"SELECT 1 FROM {self._t} WHERE key BETWEEN ? AND ? LIMIT 1",
                ("0" * 64, "f" * 64),
            ).fetchone()
            is not None
        )

    def __repr__(self) -> str:
        return f"SqliteCache({self.location!r}, table={self.table!r})"

    @property
    def checkpoints(self) -> int:
        """WAL copies made by the checkpoint thread so far."""
        return self._checkpointer.checkpoints

    @property
    def journal_mode(self) -> str:
        """The connection's journal mode (``wal`` unless the file system refused it)."""
        with self._read_lock:
            return str(self._reader.execute("PRAGMA journal_mode").fetchone()[0])

    async def get(self, key: str) -> bytes | None:
        found = await anyio.to_thread.run_sync(self._get_many, (key,))
        value = found[0]
        if isinstance(value, CorruptEntryError):
            raise value
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Every key's entry in a few queries (up to _MANY_PER_QUERY keys each)."""
        return await anyio.to_thread.run_sync(self._get_many, keys)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await anyio.to_thread.run_sync(self._set_many, ((key, value),), ttl_s)

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Every entry in one transaction: one commit (one fsync), not one per entry."""
        await anyio.to_thread.run_sync(self._set_many, entries, ttl_s)

    async def delete(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._delete, key)

    async def stats(self) -> CacheStats:
        return await anyio.to_thread.run_sync(self._stats)

    async def clear(self) -> int:
        return await anyio.to_thread.run_sync(self._clear)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    # -- in a worker thread ----------------------------------------------------------

    def _get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        rows: dict[str, tuple[bytes | None, float | None]] = {}
        stored = [_stored(key) for key in keys]
        if self._text_keys:
            stored += [key for key, form in zip(keys, stored, strict=True) if form is not key]
        try:
            with self._read_lock:
                for start in range(0, len(stored), _MANY_PER_QUERY):
                    chunk = stored[start : start + _MANY_PER_QUERY]
                    marks = ", ".join("?" * len(chunk))
                    # One row holding them all: each row stepped through would let go of
                    # the GIL and wait to get it back from a busy event loop (see above).
                    # JSON holds no bytes: a key stored as bytes comes back as its hex.
                    (found,) = self._reader.execute(
                        "SELECT json_group_array(json_array("
                        " iif(typeof(key) = 'blob', lower(hex(key)), key),"
                        f" hex(value), typeof(value), expires_at, typeof(key) = 'blob'))"
                        f" FROM {self._t} WHERE key IN ({marks})",
                        tuple(chunk),
                    ).fetchone()
                    for key, value, kind, expires_at, as_bytes in orjson.loads(found):
                        # A key written as bytes is newer than the same key as text.
                        if as_bytes or key not in rows:
                            blob = bytes.fromhex(value) if kind == "blob" else None
                            rows[key] = (blob, expires_at)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("read", f"{len(keys)} entries")
                return [None] * len(keys)
            raise
        now = self._clock()
        answers: list[bytes | CorruptEntryError | None] = []
        for key in keys:
            row = rows.get(key)
            if row is None:
                answers.append(None)
                continue
            value, expires_at = row
            if expires_at is not None and expires_at <= now:
                self._purge_due = True
                answers.append(None)
            elif value is not None:
                answers.append(value)
            else:
                answers.append(CorruptEntryError("entry is not stored as a blob"))
        return answers

    def _set_many(self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None) -> None:
        ttl = effective_ttl(ttl_s)
        now = self._clock()
        conn = self._writer
        try:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if ttl == 0.0:
                        keys = [_stored(key) for key, _ in entries]
                        keys += [key for key, _ in entries] if self._text_keys else []
                        for start in range(0, len(keys), _MANY_PER_QUERY):
                            doomed = keys[start : start + _MANY_PER_QUERY]
                            marks = ", ".join("?" * len(doomed))
                            conn.execute(f"DELETE FROM {self._t} WHERE key IN ({marks})", doomed)
                    else:
                        expires_at = None if ttl is None else now + ttl
                        # In key order: neighbouring inserts touch neighbouring pages.
                        rows = sorted(
                            ((_stored(key), bytes(value)) for key, value in entries),
                            key=_key_order,
                        )
                        for start in range(0, len(rows), _ROWS_PER_INSERT):
                            chunk = rows[start : start + _ROWS_PER_INSERT]
                            # One statement of many rows rather than executemany: one
                            # step, so the GIL is let go and taken back once (see above).
                            values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                            conn.execute(
                                f"INSERT OR REPLACE INTO {self._t}"
                                f" (key, value, expires_at, created_at) VALUES {values}",
                                [v for key, value in chunk for v in (key, value, expires_at, now)],
                            )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._writes += len(entries)
                self._unchecked += len(entries)
                if self._unchecked >= CHECKPOINT_EVERY_ENTRIES:
                    self._unchecked = 0
                    self._checkpointer.request()
                if self._purge_due or self._writes % _PURGE_EVERY < len(entries):
                    self._purge()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._timed_out("write", f"{len(entries)} entries")
                return
            raise

    def _delete(self, key: str) -> bool:
        with self._write_lock:
            cursor = self._writer.execute(f"DELETE FROM {self._t} WHERE key = ?", (_stored(key),))
            removed = cursor.rowcount > 0
            if self._text_keys:
                removed = self._delete_text_forms([key]) > 0 or removed
        return removed

    def _delete_text_forms(self, keys: Sequence[str]) -> int:
        """Delete hex keys written as text by an earlier version (the write lock is held)."""
        text = [key for key in keys if _stored(key) is not key]
        removed = 0
        for start in range(0, len(text), _MANY_PER_QUERY):
            doomed = text[start : start + _MANY_PER_QUERY]
            marks = ", ".join("?" * len(doomed))
            removed += self._writer.execute(
                f"DELETE FROM {self._t} WHERE key IN ({marks})", doomed
            ).rowcount
        return removed

    def _stats(self) -> CacheStats:
        with self._read_lock:
            (entries,) = self._reader.execute(
                f"SELECT count(*) FROM {self._t} WHERE expires_at IS NULL OR expires_at > ?",
                (self._clock(),),
            ).fetchone()
        size = 0
        for path in (self.location, self.location + "-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.path.getsize(path)
        return CacheStats(self.backend, self.location, int(entries), size)

    def _clear(self) -> int:
        with self._write_lock:
            removed = self._writer.execute(f"DELETE FROM {self._t}").rowcount
            self._writer.execute("PRAGMA incremental_vacuum")
        return int(removed)

    def _close(self) -> None:
        self._checkpointer.close()
        with self._read_lock:
            self._reader.close()
        with self._write_lock:
            self._writer.close()

    def _purge(self) -> None:
        """Delete up to one batch of expired rows (the write lock is held)."""
        self._purge_due = False
        self._writer.execute(
            f"DELETE FROM {self._t} WHERE rowid IN (SELECT rowid FROM {self._t}"
            " WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
            (self._clock(), _PURGE_BATCH),
        )

    def _timed_out(self, action: str, key: str) -> None:
        self.lock_timeouts += 1
        logger.debug("cache %s of %s skipped: %s is locked", action, key, self.location)


def _stored(key: str) -> str | bytes:
    """The key as the table holds it: a SHA-256 hex key as its bytes, any other as text."""
    return bytes.fromhex(key) if len(key) == 64 and _HEX_KEY.fullmatch(key) else key


def _key_order(row: tuple[str | bytes, bytes]) -> tuple[bool, str | bytes]:
    # Keys as bytes and as text in one batch: each kind in its own order (as the index).
    return isinstance(row[0], str), row[0]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # Extended codes (SQLITE_BUSY_SNAPSHOT, …) keep the primary code in the low byte.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Checkpointer:
    """A thread that copies the WAL into the file (PASSIVE: writers go on) when asked,
    on a connection of its own. Requests that come while it copies make one more copy."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.checkpoints = 0
        self._conn = conn
        self._due = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._due.set()

    def close(self) -> None:
        """Finish the copy under way, if any, and close the connection."""
        self._closing = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._closing:
                    return
                self._checkpoint()
        finally:
            self._conn.close()

    def _checkpoint(self) -> None:
        try:
            # What was written while a copy ran is copied next, until the WAL is copied
            # whole: only then does the next write start the WAL over from its beginning
            # (otherwise it grows to the writer's backstop, which copies it all at once).
            for _ in range(_COPIES_PER_CHECKPOINT):
                busy, in_wal, copied = self._conn.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
                self.checkpoints += 1
                if busy or copied >= in_wal or self._closing:
                    break
        except sqlite3.Error as exc:
            # Busy (another process's checkpoint) or worse: the writer's own backstop
            # (WAL_AUTOCHECKPOINT_PAGES) still bounds the WAL.
            logger.debug("WAL checkpoint failed: %s", exc)
