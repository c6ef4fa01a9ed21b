"""Stream prompts out of a JSONL file or stdin, in input order, without ever holding it whole.

Reading and parsing happen in a worker thread, one bounded batch at a time, so a slow
disk or a big parse never blocks the event loop. A stream (stdin, a named pipe, a device)
is read exactly once, here, and waited on where a cancel reaches the wait.
"""

from __future__ import annotations

import os
import selectors
import stat
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Generic, Protocol, TypeVar, overload

import anyio

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io.closing import AsyncClosing
from lm_deluge_cli.io.daemon_thread import run_in_daemon_thread
from lm_deluge_cli.io.idset import IdSet
from lm_deluge_cli.io.lines import DEFAULT_CHUNK_SIZE, Line, LineSplitter, TooLong, read_function
from lm_deluge_cli.io.parse import BadLine, parse_line
from lm_deluge_cli.io.source import (
    SNIFF_BYTES,
    check_input,
    is_stream,
    open_input,
    pollable,
    utf16_problem,
)
from lm_deluge_cli.types import Prompt, id_key

__all__ = [
    "MAX_LINE_BYTES",
    "BadLine",
    "InputReader",
    "LineItem",
    "ReaderStatistics",
    "check_input",
    "count_lines",
    "parse_line",
]

_BOM = b"\xef\xbb\xbf"
# A batch ends after this many lines or bytes, whichever comes first: a megabyte of
# tiny lines would otherwise become tens of thousands of Prompt objects at once.
DEFAULT_BATCH_LINES = 1000
DEFAULT_BATCH_BYTES = 1 << 20
# The first batches are small and double (64, 64, 128, 256 … up to the batch size): the
# first requests go out once 64 lines are parsed, not a whole batch.
FIRST_BATCH_LINES = 64
# A longer line is an invalid_input record, its bytes dropped as they are read, so that an
# input that never ends its line (``-i /dev/zero``) cannot grow memory without bound. Far
# above what any provider takes in one request (OpenAI's 50 MB of images is ~67 MB once
# base64-encoded in a line).
MAX_LINE_BYTES = 256 << 20

Item = Prompt | BadLine


class LineItem(Protocol):
    """What a parsed line must offer the reader: its id, line number and id identity."""

    @property
    def id(self) -> str | int: ...

    @property
    def line(self) -> int: ...

    @property
    def key(self) -> str: ...


ItemT = TypeVar("ItemT", bound=LineItem)


def count_lines(
    path: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> int | None:
    """Count a file's lines quickly (blank ones too): an estimate of its prompt count.

    None for stdin, a pipe or anything but a regular file, which is never opened here:
    counting would consume it.
    """
    if is_stream(path):
        return None
    count = 0
    last = b"\n"
    try:
        with open(path, "rb", buffering=0) as stream:
            while chunk := stream.read(chunk_size):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as exc:
        raise UsageError(f"cannot read input file {path}: {exc.strerror or exc}") from exc
    return count + (last != b"\n")


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """A snapshot of an InputReader's progress.

    `lines` counts every physical line, blank ones included; `prompts` counts valid
    prompt lines (skipped ones included); `bad_lines` includes duplicate ids.
    """

    lines: int
    prompts: int
    bad_lines: int
    skipped: int
    bytes_read: int
    total_bytes: int | None


class InputReader(AsyncClosing, Generic[ItemT]):
    """Yield each input line as a Prompt (or what `parse` makes of it) or BadLine, in order.

    `source` is a path, ``-`` for stdin, or an open binary stream. Blank lines are
    skipped but still count for line numbers. A line whose id was already used by an
    earlier line becomes a BadLine. Prompts for which `skip` returns True (already
    done, on resume) are counted and dropped. Local files that lines name are read
    relative to the input file's folder; with `files_root`, only from under it.

    `parse` reads other line shapes (the toolkit's ``{"id", "text"}`` lines): it gets the
    line number and the raw line, and returns an item with ``id``, ``line`` and ``key``,
    or a BadLine. Without it, lines are parsed as `run` reads them (`parse_line`).

    Iterate with ``async for`` inside a running event loop, or with plain ``for``.
    Asynchronously, a pipe or terminal is awaited until it is readable and then read
    without blocking, so an idle stdin never ties up a worker thread (nor Ctrl-C). A path
    that is not a regular file (a named pipe, /dev/fd/N, a device) is opened without
    waiting for its writer (see `open_input`) and read once, like stdin. An input that
    starts as UTF-16 raises UsageError before any of its lines is yielded.
    """

    @overload
    def __init__(
        self: InputReader[Prompt],
        source: str | os.PathLike[str] | BinaryIO,
        *,
        skip: Callable[[Prompt], bool] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_lines: int = DEFAULT_BATCH_LINES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        files_root: str | os.PathLike[str] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        parse: Callable[[int, bytes | bytearray], ItemT | BadLine],
        skip: Callable[[ItemT], bool] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_lines: int = DEFAULT_BATCH_LINES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None: ...

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        parse: Callable[[int, bytes | bytearray], Any] | None = None,
        skip: Callable[[Any], bool] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        batch_lines: int = DEFAULT_BATCH_LINES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        files_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self._owned: BinaryIO | None = None
        self._total_bytes: int | None = None
        # Local image/file paths in lines resolve against the input file's folder.
        base_dir: Path | None = None
        if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
            base_dir = Path(source).resolve().parent
        self._parse: Callable[[int, bytes | bytearray], Any] = parse or partial(
            parse_line,
            base_dir=base_dir,
            files_root=None if files_root is None else Path(files_root),
        )
        if isinstance(source, str | os.PathLike):
            check_input(source)
            if os.fspath(source) == "-":
                stream: BinaryIO = sys.stdin.buffer
                self._name = "stdin"
            else:
                stream = self._owned = open_input(source)
                self._name = os.fspath(source)
        else:
            stream = source
            self._name = str(getattr(stream, "name", "the input"))

        # A pipe, terminal or socket can block for ever: read it by fd once it is readable.
        self._wait_fd: int | None = None
        self._selector: selectors.BaseSelector | None = None
        self._read = read_function(stream)
        self._is_stream = True
        try:
            fd = stream.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError, AttributeError):
            pass  # an in-memory stream: never blocks, has no size to report
        else:
            if stat.S_ISREG(mode):
                self._total_bytes = os.fstat(fd).st_size
                # Stdin from a file (``< in.jsonl``) is still told to convert on the way in.
                self._is_stream = source == "-"
            elif pollable(fd):
                self._wait_fd = fd
                self._read = partial(os.read, fd)
            # Other devices (/dev/null in cron jobs) cannot be polled and never block.

        # The input's start, kept until its first line is whole: a UTF-16 input is refused
        # before any of its lines is used (None once looked at).
        self._head: bytes | None = b""
        self._splitter = LineSplitter(MAX_LINE_BYTES)
        self._pending: deque[tuple[int, Line]] = deque()
        self._eof = False
        self._chunk_size = chunk_size
        self._skip = skip
        self._batch_lines = batch_lines
        self._batch_bytes = batch_bytes
        self._ids = IdSet()
        self._line_no = 0
        self._prompts = 0
        self._bad = 0
        self._skipped = 0
        self._bytes_read = 0
        # A batch abandoned by a stop runs on in its thread: the input is closed after it.
        self._lock = threading.Lock()
        self._in_thread = False
        self._close_later = False

    def statistics(self) -> ReaderStatistics:
        """A snapshot of the counters (safe to call while iterating)."""
        return ReaderStatistics(
            lines=self._line_no,
            prompts=self._prompts,
            bad_lines=self._bad,
            skipped=self._skipped,
            bytes_read=self._bytes_read,
            total_bytes=self._total_bytes,
        )

    @property
    def items(self) -> int:
        """Non-blank lines read so far: prompts and bad lines (skipped prompts included)."""
        return self._prompts + self._bad

    def __aiter__(self) -> AsyncIterator[ItemT | BadLine]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[ItemT | BadLine]:
        done = False
        while not done:
            reads: int | None = None  # a regular file: read as much as a batch needs
            if self._wait_fd is not None:
                reads = 0
                if not self._pending and not self._eof:
                    await anyio.wait_readable(self._wait_fd)
                    reads = 1  # one read is sure not to block now
            # Lines may name local files and images that take seconds to read and scale: a
            # stop abandons the batch instead of waiting for it.
            self._in_thread = True
            items, done = await run_in_daemon_thread(
                partial(self._batch_in_thread, reads), name="lm-deluge input"
            )
            for item in items:
                yield item

    def __iter__(self) -> Iterator[ItemT | BadLine]:
        done = False
        while not done:
            items, done = self._next_batch(None)
            yield from items

    def _batch_in_thread(self, reads: int | None) -> tuple[list[ItemT | BadLine], bool]:
        try:
            return self._next_batch(reads)
        finally:
            with self._lock:
                self._in_thread = False
                if self._close_later:
                    self._close_owned()

    def _next_batch(self, reads: int | None) -> tuple[list[ItemT | BadLine], bool]:
        """Process up to one batch of lines, reading at most `reads` chunks (None: any).

        Also reports whether the input is exhausted.
        """
        items: list[ItemT | BadLine] = []
        lines_left = min(self._batch_lines, max(FIRST_BATCH_LINES, self._line_no))
        bytes_left = self._batch_bytes
        while lines_left > 0 and bytes_left > 0 and not self._close_later:
            if not self._pending:
                if self._eof or reads == 0:
                    break
                if reads is not None:
                    reads -= 1
                elif self._wait_fd is not None:
                    self._wait_readable(self._wait_fd)
                chunk = self._read(self._chunk_size)
                if self._head is not None:
                    self._take_head(self._head, chunk)
                elif chunk:
                    completed = self._splitter.feed(chunk)
                    if not completed:
                        # A line in progress (however long, or never ending) counts too:
                        # the batch ends, and what the line became so far is handed over.
                        bytes_left -= len(chunk)
                    self._pending.extend(completed)
                else:
                    self._eof = True
                    self._pending.extend(self._splitter.finish())
                continue
            offset, raw = self._pending.popleft()
            self._line_no += 1
            self._bytes_read = offset + len(raw) + 1
            lines_left -= 1
            bytes_left -= len(raw)
            item = self._line(offset, raw)
            if item is not None:
                items.append(item)
        done = self._eof and not self._pending
        if done and self._total_bytes is not None:
            self._bytes_read = self._total_bytes
        return items, done

    def _take_head(self, head: bytes, chunk: bytes) -> None:
        """Gather the input's first line (up to SNIFF_BYTES) and refuse it if it is UTF-16;
        once looked at, it is split into lines like any chunk."""
        head += chunk
        if chunk and b"\n" not in head and len(head) < SNIFF_BYTES:
            self._head = head
            return
        self._head = None
        problem = utf16_problem(head, self._name, stream=self._is_stream)
        if problem is not None:
            raise UsageError(problem)
        if head:
            self._pending.extend(self._splitter.feed(head))
        if not chunk:
            self._eof = True
            self._pending.extend(self._splitter.finish())

    def _wait_readable(self, fd: int) -> None:
        """Block until a read of the input cannot wait (iterated without an event loop).

        A pipe opened before its writer reads as empty until the writer comes: a read
        before that would end the input early.
        """
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
            self._selector.register(fd, selectors.EVENT_READ)
        while not self._selector.select():
            pass

    def _line(self, offset: int, raw: Line) -> ItemT | BadLine | None:
        if isinstance(raw, TooLong):
            self._bad += 1
            return BadLine(
                self._line_no,
                f"line {self._line_no}: longer than {MAX_LINE_BYTES >> 20} MiB, so it was not "
                "read; name large images and files by path instead of inlining them",
            )
        if offset == 0 and raw[:3] == _BOM:
            raw = raw[3:]
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        if not raw or (raw[:1].isspace() and not raw.strip()):
            return None
        parsed: ItemT | BadLine = self._parse(self._line_no, raw)
        if isinstance(parsed, BadLine):
            self._bad += 1
            # A bad line with an id still claims it; a later reuse is then the duplicate.
            if parsed.id is not None and not self._ids.add(id_key(parsed.id)):
                return replace(parsed, id=None)
            return parsed
        if not self._ids.add(parsed.key):
            self._bad += 1
            return BadLine(
                parsed.line,
                f"line {parsed.line}: duplicate id {parsed.key} (an earlier line has the same id)",
            )
        self._prompts += 1
        if self._skip is not None and self._skip(parsed):
            self._skipped += 1
            return None
        return parsed

    def close(self) -> None:
        """Close the input file if this reader opened it (never stdin); a batch still being
        read in its thread (abandoned by a stop) closes it when it ends."""
        with self._lock:
            if self._in_thread:
                self._close_later = True
            else:
                self._close_owned()

    def _close_owned(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._owned is not None:
            self._owned.close()
            self._owned = None
