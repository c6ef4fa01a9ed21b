"""Split a byte stream into lines in bounded chunks, with the byte offset of each line.

Shared by the input reader and the output scanners so that neither ever holds a file whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Line",
    "LineSplitter",
    "TooLong",
    "iter_lines",
    "read_function",
]

DEFAULT_CHUNK_SIZE = 1 << 20

# A long line is assembled in a bytearray and handed over as is: copying a 50 MB
# line into `bytes` would double its peak memory for nothing (orjson reads both).
Line = bytes | bytearray


def read_function(stream: BinaryIO, limit: int | None = None) -> Callable[[int], bytes]:
    """A ``read(n)`` for `stream` that returns as soon as some data is available.

    Buffered streams (stdin) get ``read1`` so a slow pipe yields lines as they arrive
    instead of waiting for a full chunk. With `limit`, at most that many bytes are
    read in total: a snapshot of a file that another process may still be appending to.
    """
    read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    if limit is None:
        return read
    remaining = limit

    def read_limited(size: int) -> bytes:
        nonlocal remaining
        if remaining <= 0:
            return b""
        data = read(min(size, remaining))
        remaining -= len(data)
        return data

    return read_limited


class TooLong(bytes):
    """Stands for a line longer than the splitter's limit, its bytes dropped as they came:
    handed over once, when the line passes the limit (a device that never sends a newline
    still gets its line reported)."""


class LineSplitter:
    """Push-based splitting: `feed` chunks in, get complete lines (and their offsets) out.

    With `max_line_bytes`, a line growing past it is handed over as one empty `TooLong`
    at once, and the rest of it is dropped up to its newline: memory stays bounded whatever
    the stream holds.
    """

    def __init__(self, max_line_bytes: int | None = None) -> None:
        self._offset = 0  # where the pending (incomplete) line starts
        self._pending = bytearray()
        self._max = max_line_bytes
        self._dropped = 0  # bytes of the pending line dropped (it was too long)
        self._too_long = False  # the pending line has just passed the limit: to report

    def feed(self, chunk: bytes) -> list[tuple[int, Line]]:
        """The lines that `chunk` completes, as ``(offset, line)`` without the ``\\n``."""
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            self._add(chunk)
            return self._report([])
        offset = self._offset
        lines: list[tuple[int, Line]] = []
        if self._dropped:
            offset += self._dropped + len(pieces[0]) + 1
            self._dropped = 0
        else:
            first: Line = pieces[0]
            if self._pending:
                self._pending += first
                first, self._pending = self._pending, bytearray()
            lines.append((offset, first))
            offset += len(first) + 1
        for piece in pieces[1:-1]:
            lines.append((offset, piece))
            offset += len(piece) + 1
        self._offset = offset
        self._add(pieces[-1])
        return self._report(lines)

    def finish(self) -> list[tuple[int, Line]]:
        """At end of stream: the last line if it had no final newline."""
        if not self._pending:
            return []
        line, self._pending = self._pending, bytearray()
        return [(self._offset, line)]

    def _add(self, data: bytes) -> None:
        if self._dropped:
            self._dropped += len(data)
            return
        self._pending += data
        if self._max is not None and len(self._pending) > self._max:
            self._dropped, self._pending = len(self._pending), bytearray()
            self._too_long = True

    def _report(self, lines: list[tuple[int, Line]]) -> list[tuple[int, Line]]:
        if self._too_long:
            self._too_long = False
            lines.append((self._offset, TooLong()))
        return lines


def iter_lines(
    read: Callable[[int], bytes], *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[tuple[int, Line]]:
    """Yield ``(offset, line)`` for each line, without its ``\\n``.

    `offset` is where the line starts in the stream. The last line is yielded even
    without a final newline; a caller can tell it apart because
    ``offset + len(line)`` then equals the stream's length.
    """
    splitter = LineSplitter()
    while chunk := read(chunk_size):
        yield from splitter.feed(chunk)
    yield from splitter.finish()
