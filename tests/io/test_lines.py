"""iter_lines splits any stream into the same lines and offsets, whatever the chunk size."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_deluge_cli.io.lines import Line, LineSplitter, TooLong, iter_lines, read_function


def _split(data: bytes, chunk_size: int) -> list[tuple[int, bytes]]:
    stream = io.BytesIO(data)
    return [
        (offset, bytes(line)) for offset, line in iter_lines(stream.read, chunk_size=chunk_size)
    ]


def _expected(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    offset = 0
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    for part in parts:
        out.append((offset, part))
        offset += len(part) + 1
    return out


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"a", [(0, b"a")]),
        (b"a\n", [(0, b"a")]),
        (b"a\nbc", [(0, b"a"), (2, b"bc")]),
        (b"\n\n", [(0, b""), (1, b"")]),
        (b"ab\r\ncd\r\n", [(0, b"ab\r"), (4, b"cd\r")]),
    ],
)
def test_table(data: bytes, lines: list[tuple[int, bytes]]) -> None:
    assert _split(data, 1) == lines
    assert _split(data, 1 << 20) == lines


@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_chunking_gives_the_same_lines(data: bytes, chunk_size: int) -> None:
    assert _split(data, chunk_size) == _expected(data)


def test_line_longer_than_many_chunks() -> None:
    long = b"x" * 100_000
    assert _split(b"a\n" + long + b"\nb", 4096) == [(0, b"a"), (2, long), (100_003, b"b")]


def test_unterminated_last_line_ends_at_stream_length() -> None:
    data = b"one\ntwo"
    offset, line = _split(data, 3)[-1]
    assert offset + len(line) == len(data)


def test_read_function_limit_takes_a_snapshot() -> None:
    stream = io.BytesIO(b"abc\ndef\n")
    read = read_function(stream, limit=5)
    assert [bytes(line) for _, line in iter_lines(read, chunk_size=2)] == [b"abc", b"d"]


def _split_bounded(data: bytes, chunk_size: int, limit: int) -> list[tuple[int, Line]]:
    splitter = LineSplitter(limit)
    found = []
    for start in range(0, len(data), chunk_size):
        found += splitter.feed(data[start : start + chunk_size])
        assert len(splitter._pending) <= limit + chunk_size  # memory stays bounded
    return found + splitter.finish()


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    st.integers(1, 16),
    st.integers(4, 20),
)
def test_a_limit_drops_only_the_lines_over_it_and_keeps_every_offset(
    lines: list[bytes], chunk_size: int, limit: int
) -> None:
    data = b"".join(line + b"\n" for line in lines)
    found = _split_bounded(data, chunk_size, limit)
    expected = _expected(data)
    assert len(found) == len(expected)
    for (offset, line), (want_offset, want) in zip(found, expected, strict=True):
        if len(want) > limit + chunk_size:
            assert isinstance(line, TooLong)  # certainly over: reported, not kept
        if isinstance(line, TooLong):
            assert len(want) > limit and offset == want_offset
        else:
            assert (offset, line) == (want_offset, want)


def test_a_line_that_never_ends_is_reported_once_as_soon_as_it_passes_the_limit() -> None:
    splitter = LineSplitter(1000)
    assert splitter.feed(b"{}\n" + b"\0" * 600) == [(0, b"{}")]
    reported = splitter.feed(b"\0" * 600)
    assert reported == [(3, b"")] and isinstance(reported[0][1], TooLong)
    for _ in range(1000):  # a device sending zeros for ever: nothing more, nothing kept
        assert splitter.feed(b"\0" * 4096) == []
    assert splitter.feed(b"\0\n{}\n") == [(3 + 1200 + 4096 * 1000 + 2, b"{}")]
    assert splitter.finish() == []
