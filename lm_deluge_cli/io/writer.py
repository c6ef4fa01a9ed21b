"""Append result records to the output file, one write per record, under an exclusive lock.

Durability: each record reaches the operating system in a single ``write`` as soon as
it is produced, so it survives our process being killed (even by SIGKILL). Surviving a
power loss needs an fsync: by default once, when the writer closes (``fsync="end"``);
``"always"`` syncs after every record (slow), ``"none"`` never does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lm_deluge_cli.errors import OutputLockedError, OutputWriteError
from lm_deluge_cli.io.closing import Closing
from lm_deluge_cli.io.records import Record, encode
from lm_deluge_cli.results import Result

__all__ = [
    "FILE_MODE",
    "FSYNC_POLICIES",
    "OutputLock",
    "ResultWriter",
    "lock_path",
    "move_aside",
    "write_error",
]

FSYNC_POLICIES = ("none", "end", "always")
# The mode every file a run creates asks for; the umask applies on top. Not 0o666: under
# umask 000 that would make results, locks and manifests world-writable.
FILE_MODE = 0o664

_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run again (results so far are kept)",
    errno.EDQUOT: "the disk quota is used up; free some space and run again "
    "(results so far are kept)",
    errno.EROFS: "the file system is read-only; choose an output path on a writable disk",
    errno.EACCES: "check the permissions of the file and its directory, "
    "or choose another output path",
    errno.EPERM: "check the permissions of the file and its directory, "
    "or choose another output path",
    errno.ENOENT: "create the directory first, or choose another output path",
}


def write_error(action: str, path: str | os.PathLike[str], exc: OSError) -> OutputWriteError:
    """An OutputWriteError naming the path, the cause and, when we know one, the fix."""
    cause = exc.strerror or str(exc)
    hint = _HINTS.get(exc.errno or 0)
    return OutputWriteError(f"cannot {action} {path}: {cause}" + (f"; {hint}" if hint else ""))


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file that guards `output`: ``<output>.lock``."""
    p = Path(output)
    return p.with_name(p.name + ".lock")


class OutputLock:
    """Exclusive ``flock`` locks on the output file itself and on ``<output>.lock``, held
    until `release`.

    The lock on the file is what keeps two runs from writing one file, whatever names
    reach it (a symlink, a hard link, another spelling of the path); ``<output>.lock``
    holds the holder's pid for the message a second run prints, and is removed on release.
    The operating system drops both when the holder dies, so a killed run never leaves a
    stale lock. Raises OutputLockedError if another process holds either.
    """

    def __init__(self, output: str | os.PathLike[str]) -> None:
        self.output = Path(output)
        self.path = lock_path(output)
        self._fd: int | None = self._acquire()
        self._file_fd: int | None = None
        try:
            self._file_fd = self._lock_file()
        except BaseException:
            self.release()
            raise

    def _acquire(self) -> int:
        # A releasing holder unlinks the file; if we locked an unlinked file, retry on
        # the new one, or two runs could each hold a lock on a different inode.
        fd = _lock_at(
            self.path,
            os.O_RDWR | os.O_CREAT,
            "create the lock file",
            lambda held: (
                f"another run is writing {self.output} ({_holder(_read_pid(held))}, whose pid "
                f"is in {self.path}); wait for it to finish or stop it, or choose another output"
            ),
            f"cannot lock {self.output}: {self.path} keeps being replaced",
        )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is a courtesy; the lock itself is already held
        return fd

    def _lock_file(self) -> int | None:
        """Lock the file now at the output's path, creating it if need be (None: the path
        is not a regular file, a device say, which no run can pay twice into)."""
        try:
            if not stat.S_ISREG(os.stat(self.output).st_mode):
                return None
        except FileNotFoundError:
            pass  # created below, or through a dangling symlink to where it will be
        except OSError as exc:
            raise write_error("open the output file", self.output, exc) from exc
        # Opened for writing: NFS emulates flock with locks that need it. Two runs creating
        # the file at once open the same one (no O_EXCL) and one locks it. The holder may
        # replace the file (--fresh, rerank's sort) between our open and our lock: then the
        # new file is taken.
        return _lock_at(
            self.output,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT,
            "open the output file",
            lambda held: (
                f"another run is writing {self.output} under another name for the same "
                f"file, a symlink or hard link ({_holder(_flock_holder(held))}); wait for it "
                "to finish or stop it, or choose another output"
            ),
            f"cannot lock {self.output}: it keeps being replaced",
        )

    def follow(self, fd: int | None = None) -> None:
        """After the output at our path was replaced by a new file, lock that one and let the
        old one go. `fd`: the new file, already locked by the caller before it was renamed
        into place; without it, the file at the path is opened and locked now, and a run
        that locked it first makes this raise OutputLockedError (never two writers)."""
        if self._fd is None:
            raise ValueError("follow needs a held lock")
        if fd is None:
            new = self._lock_file()
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            new = fd
        old, self._file_fd = self._file_fd, new
        if old is not None:
            os.close(old)

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop both locks (idempotent)."""
        file_fd, self._file_fd = self._file_fd, None
        if file_fd is not None:
            os.close(file_fd)
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass  # a leftover lock file is harmless: only a held flock means "locked"
        finally:
            os.close(fd)

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _lock_at(path: Path, flags: int, action: str, busy: Callable[[int], str], replaced: str) -> int:
    """Open `path` with `flags` and take an exclusive flock on the file it names, trying
    again while that file is replaced between the open and the lock (a lock on a file no
    longer at the path guards nothing). Another holder raises OutputLockedError(busy(fd))."""
    for _ in range(100):
        try:
            fd = os.open(path, flags, FILE_MODE)
        except OSError as exc:
            raise write_error(action, path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = busy(fd)
            os.close(fd)
            raise OutputLockedError(message) from None
        if _still_at(fd, path):
            return fd
        os.close(fd)
    raise OutputLockedError(replaced)


def _holder(pid: int | None) -> str:
    return f"process {pid}" if pid else "another process"


def _still_at(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _flock_holder(fd: int) -> int | None:
    """The pid holding a flock on `fd`'s file, from /proc/locks (Linux; else None)."""
    info = os.fstat(fd)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            table = locks.read()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; "->" lines are waiters.
    for row in table.splitlines():
        fields = row.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class ResultWriter(Closing):
    """Appends records to `path` (``-`` for stdout), holding the output lock until closed.

    The file is opened with ``O_APPEND | O_CREAT`` and mode FILE_MODE (the umask applies),
    so nothing already in it is ever overwritten. A failed write raises
    OutputWriteError; at worst it leaves a torn last line, which resume repairs.
    Writes block: they are quick (the page cache), except with ``fsync="always"``.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: str = "end") -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.path: Path | None = None if os.fspath(path) == "-" else Path(path)
        self.fsync = fsync
        self.records_written = 0
        self.bytes_written = 0
        self._fd: int | None = None
        self._lock: OutputLock | None = None
        self._closed = False
        if self.path is None and sys.stdout is None:
            # Started with stdout closed (``>&-``): said before anything is sent.
            raise OutputWriteError("cannot write results: stdout is closed; give -o FILE")
        if self.path is not None:
            self._lock = OutputLock(self.path)
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            except OSError as exc:
                self._lock.release()
                raise write_error("open the output file", self.path, exc) from exc

    @property
    def name(self) -> str:
        """The output's path, or ``<stdout>``."""
        return str(self.path) if self.path is not None else "<stdout>"

    def write(self, record: Result | Record) -> None:
        """Append one record: a Result, or a record already in its JSON shape."""
        self.write_line(encode(record))

    def write_many(self, records: Sequence[Result | Record]) -> None:
        """Append records in one write (a record is never split; see `write_line`)."""
        if len(records) == 1:
            self.write_line(encode(records[0]))
            return
        self.write_line(b"".join(map(encode, records)), count=len(records))

    def write_line(self, line: bytes, *, count: int = 1) -> None:
        """Append one already-encoded record (ending in a newline) in one write, or
        `count` records joined."""
        if self._closed:
            raise ValueError("write to a closed ResultWriter")
        if self._fd is None:
            self._write_stdout(line)
        else:
            self._write_file(self._fd, line)
        self.records_written += count
        self.bytes_written += len(line)

    def start_over(self) -> Path | None:
        """Move the existing output aside (`move_aside`) and go on in a new, empty file,
        without ever dropping the lock; returns where the old file went (None if empty)."""
        if self.path is None or self._fd is None or self._closed:
            raise ValueError("start_over needs an open output file")
        if os.fstat(self._fd).st_size == 0:
            return None
        os.close(self._fd)
        self._fd = None
        moved = move_aside(self.path)
        if self._lock is not None:
            # The old file's lock is kept until the new one is held.
            self._lock.follow()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise write_error("open the output file", self.path, exc) from exc
        return moved

    def replace_contents(self, lines: Iterable[bytes]) -> None:
        """Atomically make the output hold exactly `lines` (each ending in a newline), still
        under the lock: written beside it, synced, then renamed over it (rerank's sort)."""
        if self.path is None or self._fd is None or self._closed:
            raise ValueError("replace_contents needs an open output file")
        temporary = self.path.with_name(f".{self.path.name}.sorting")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        except OSError as exc:
            raise write_error("rewrite", self.path, exc) from exc
        try:
            # Locked before it takes the output's name, so no moment leaves the output
            # unlocked for a run reaching it by another name.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for line in lines:
                self._write_file(fd, line)
            os.fsync(fd)
            os.replace(temporary, self.path)
        except OSError as exc:
            os.close(fd)
            raise write_error("rewrite", self.path, exc) from exc
        except BaseException:
            os.close(fd)
            raise
        if self._lock is not None:
            self._lock.follow(fd)  # it owns the descriptor now
        else:
            os.close(fd)
        os.close(self._fd)
        self._fd = None
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise write_error("open the output file", self.path, exc) from exc

    def _write_file(self, fd: int, line: bytes) -> None:
        try:
            written = os.write(fd, line)
            # A regular file only takes part of a write when it is about to fail
            # (disk full); finishing the record is right, and if that fails too,
            # the torn tail is truncated by the next resume.
            while written < len(line):
                written += os.write(fd, memoryview(line)[written:])
            if self.fsync == "always":
                os.fsync(fd)
        except OSError as exc:
            raise write_error("write to", self.name, exc) from exc

    def _write_stdout(self, line: bytes) -> None:
        try:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise OutputWriteError("cannot write results: stdout was closed") from exc
            raise write_error("write to", self.name, exc) from exc

    def sync(self) -> None:
        """fsync the output now (no-op for stdout)."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise write_error("sync", self.name, exc) from exc

    def close(self) -> None:
        """Sync (per the policy), close the output and release the lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        fd, self._fd = self._fd, None
        try:
            if fd is not None and self.fsync != "none":
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise write_error("sync", self.name, exc) from exc
                if self.path is not None:
                    _fsync_directory(self.path.parent)
        finally:
            if fd is not None:
                os.close(fd)
            if self._lock is not None:
                self._lock.release()

    def _close_on_exit(self, exc: BaseException | None) -> None:
        try:
            self.close()
        except OutputWriteError:
            # Already failing (often for the same full disk): keep the first error.
            if exc is None:
                raise


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable too (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to sync a directory; the data itself is synced
    finally:
        os.close(fd)


def move_aside(path: str | os.PathLike[str], *, now: datetime | None = None) -> Path | None:
    """Rename an old output to ``<name>.<UTC yyyymmddTHHMMSSZ>.bak`` (for ``--fresh``).

    Never deletes anything: if that name is taken, ``-1``, ``-2`` … is added before
    ``.bak``. Returns the new path, or None when `path` does not exist.
    """
    p = Path(path)
    if not p.exists():
        return None
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = p.with_name(f"{p.name}.{stamp}.bak")
    counter = 0
    while os.path.lexists(target):
        counter += 1
        target = p.with_name(f"{p.name}.{stamp}-{counter}.bak")
    try:
        os.rename(p, target)
    except OSError as exc:
        raise write_error("move aside", p, exc) from exc
    return target
