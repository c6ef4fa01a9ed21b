"""InputReader: line handling, duplicates, counters, stdin streaming; check_input, count_lines."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypedDict, Unpack

import anyio
import orjson
import pytest

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io import reader as reader_module
from lm_deluge_cli.io.reader import (
    BadLine,
    InputReader,
    ReaderStatistics,
    check_input,
    count_lines,
)
from lm_deluge_cli.types import Prompt


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    return path


class _Sizes(TypedDict, total=False):
    chunk_size: int
    batch_lines: int
    batch_bytes: int


def _read(source: Path | str | BinaryIO, **sizes: Unpack[_Sizes]) -> list[Prompt | BadLine]:
    with InputReader(source, **sizes) as reader:
        return list(reader)


def _summary(items: list[Prompt | BadLine]) -> list[tuple[str, int, object]]:
    return [
        ("ok", i.line, i.id) if isinstance(i, Prompt) else ("bad", i.line, i.reason) for i in items
    ]


def test_bom_crlf_blank_lines_and_missing_final_newline(tmp_path: Path) -> None:
    # BOM + CRLF, a CRLF blank line, a whitespace line, a blank line, no final newline.
    data = b'\xef\xbb\xbf{"prompt": "a"}\r\n\r\n   \t \n{"prompt": "b"}\n\n{"prompt": "c"}'
    items = _read(_write(tmp_path, data))
    assert _summary(items) == [("ok", 1, 1), ("ok", 4, 4), ("ok", 6, 6)]
    assert [i.messages[0]["content"] for i in items if isinstance(i, Prompt)] == ["a", "b", "c"]


def test_invalid_utf8_line_is_bad_and_others_survive(tmp_path: Path) -> None:
    data = b'{"prompt": "a"}\n{"prompt": "\xff"}\n{"prompt": "c"}\n'
    items = _read(_write(tmp_path, data))
    assert _summary(items) == [
        ("ok", 1, 1),
        ("bad", 2, "line 2: not valid UTF-8 (byte 0xff at byte offset 12)"),
        ("ok", 3, 3),
    ]


def test_bom_only_stripped_at_the_very_start(tmp_path: Path) -> None:
    items = _read(_write(tmp_path, b'{"prompt": "a"}\n\xef\xbb\xbf{"prompt": "b"}\n'))
    assert isinstance(items[1], BadLine)
    assert items[1].reason.startswith("line 2: not valid JSON")


def test_duplicate_ids(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "prompt": "1"},
        {"id": "b", "prompt": "2"},
        {"id": "a", "prompt": "3"},
        {"id": 1, "prompt": "4"},  # int 1 and string "1" are different ids
        {"id": "1", "prompt": "5"},
        {"id": "b", "messages": 7},  # bad *and* a duplicate: keeps its reason, loses its id
        {"id": "c", "messages": 7},  # a bad line with an id still claims it
        {"id": "c", "prompt": "8"},
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    items = _read(_write(tmp_path, data))
    assert _summary(items) == [
        ("ok", 1, "a"),
        ("ok", 2, "b"),
        ("bad", 3, 'line 3: duplicate id "a" (an earlier line has the same id)'),
        ("ok", 4, 1),
        ("ok", 5, "1"),
        ("bad", 6, "line 6: 'messages' must be a non-empty list, got 7"),
        ("bad", 7, "line 7: 'messages' must be a non-empty list, got 7"),
        ("bad", 8, 'line 8: duplicate id "c" (an earlier line has the same id)'),
    ]
    assert [i.id for i in items if isinstance(i, BadLine)] == [None, None, "c", None]


def test_line_number_id_can_collide_with_an_explicit_id(tmp_path: Path) -> None:
    data = b'{"prompt": "no id: id is 1"}\n{"id": 1, "prompt": "x"}\n'
    items = _read(_write(tmp_path, data))
    assert isinstance(items[1], BadLine)
    assert "duplicate id 1" in items[1].reason


def test_skip_and_statistics(tmp_path: Path) -> None:
    data = b'{"prompt": "a"}\n\n{"prompt": "b"}\nnope\n{"prompt": "c"}\n'
    path = _write(tmp_path, data)
    with InputReader(path, skip=lambda p: p.line == 3) as reader:
        items = list(reader)
        stats = reader.statistics()
        assert reader.items == 4
    assert _summary(items)[0] == ("ok", 1, 1)
    assert [i.line for i in items] == [1, 4, 5]
    assert stats == ReaderStatistics(
        lines=5, prompts=3, bad_lines=1, skipped=1, bytes_read=len(data), total_bytes=len(data)
    )


def test_small_batches_and_chunks_give_the_same_items(tmp_path: Path) -> None:
    lines = [orjson.dumps({"id": i, "prompt": "x" * (i % 50 + 1)}) for i in range(500)]
    path = _write(tmp_path, b"\n".join(lines) + b"\n")
    big = _read(path)
    small = _read(path, chunk_size=7, batch_lines=3, batch_bytes=100)
    assert [(i.line, i.id) for i in small] == [(i.line, i.id) for i in big]
    assert len(big) == 500


def test_a_line_over_the_limit_is_a_bad_line_and_the_next_lines_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "MAX_LINE_BYTES", 4096)
    data = b'{"id": 1, "prompt": "a"}\n{"prompt": "' + b"x" * 10_000 + b'"}\n{"prompt": "b"}\n'
    found = _summary(_read(_write(tmp_path, data), chunk_size=1000))
    assert [kind for kind, _, _ in found] == ["ok", "bad", "ok"]
    assert [line for _, line, _ in found] == [1, 2, 3]
    assert "line 2: longer than" in str(found[1][2])


def test_an_input_that_never_ends_its_line_gets_a_bad_line_and_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "MAX_LINE_BYTES", 1 << 20)
    with open("/dev/zero", "rb") as zeros, InputReader(zeros) as reader:
        first = next(iter(reader))
    assert isinstance(first, BadLine) and first.line == 1
    assert "longer than 1 MiB" in first.reason


def test_fifty_megabyte_line(tmp_path: Path) -> None:
    text = "x" * (50 * 1024 * 1024)
    path = _write(
        tmp_path, b'{"prompt": "a"}\n' + orjson.dumps({"prompt": text}) + b'\n{"prompt": "c"}'
    )
    items = _read(path)
    assert [i.line for i in items] == [1, 2, 3]
    assert isinstance(items[1], Prompt)
    assert items[1].messages[0]["content"] == text


@pytest.mark.anyio
async def test_async_iteration_in_order(tmp_path: Path) -> None:
    data = b"".join(orjson.dumps({"prompt": str(i)}) + b"\n" for i in range(2500))
    seen = []
    async with InputReader(_write(tmp_path, data), batch_lines=100) as reader:
        async for item in reader:
            assert isinstance(item, Prompt)
            seen.append(item.line)
    assert seen == list(range(1, 2501))


class _FakeStdin:
    def __init__(self, buffer: BinaryIO) -> None:
        self.buffer = buffer


@pytest.fixture
def stdin_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Point sys.stdin at a pipe; yield its write end."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "rb")
    monkeypatch.setattr(sys, "stdin", _FakeStdin(stream))
    yield write_fd
    with contextlib.suppress(OSError):
        os.close(write_fd)
    stream.close()


@pytest.mark.anyio
async def test_stdin_lines_arrive_before_eof(stdin_pipe: int) -> None:
    os.write(stdin_pipe, b'{"prompt": "first"}\n')
    reader = InputReader("-")
    assert reader.statistics().total_bytes is None
    items = aiter(reader)
    with anyio.fail_after(5):
        first = await anext(items)
    # The writer is still open: the first prompt came through a live pipe, not at EOF.
    assert isinstance(first, Prompt)
    assert first.messages[0]["content"] == "first"
    os.write(stdin_pipe, b'{"prompt": "second"}\n{"prompt": "third"}')
    os.close(stdin_pipe)
    with anyio.fail_after(5):
        rest = [item async for item in items]
    assert [i.line for i in rest] == [2, 3]


@pytest.mark.anyio
async def test_idle_stdin_does_not_block_the_event_loop(stdin_pipe: int) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    async def consume() -> list[Prompt | BadLine]:
        return [item async for item in InputReader("-")]

    result: list[Prompt | BadLine] = []

    async def run_consumer() -> None:
        result.extend(await consume())

    def feed_later() -> None:
        os.write(stdin_pipe, b'{"prompt": "late"}\n')
        os.close(stdin_pipe)

    timer = threading.Timer(0.3, feed_later)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        timer.start()
        with anyio.fail_after(5):
            await run_consumer()
        tg.cancel_scope.cancel()
    assert ticks >= 10
    assert [i.line for i in result] == [1]


@pytest.mark.anyio
async def test_cancel_while_stdin_is_idle(stdin_pipe: int) -> None:
    with anyio.move_on_after(0.2) as scope:
        async for _ in InputReader("-"):
            pass
    assert scope.cancelled_caught


# ------------------------------------------------------------- named pipes: read once


def _burst(first: int, count: int) -> bytes:
    return b"".join(
        orjson.dumps({"id": i, "prompt": str(i)}) + b"\n" for i in range(first, first + count)
    )


def _write_bursts(fifo: Path, bursts: int, size: int, pause_s: float, written: list[int]) -> None:
    """Open the pipe (waiting for its reader), write `bursts` bursts with pauses, close it."""
    fd = os.open(fifo, os.O_WRONLY)
    try:
        for burst in range(bursts):
            os.write(fd, _burst(burst * size, size))
            written.append(burst)
            time.sleep(pause_s)
    finally:
        os.close(fd)


@pytest.mark.anyio
async def test_a_named_pipe_fed_in_bursts_gives_every_line_as_it_comes(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written: list[int] = []
    writer = threading.Thread(target=_write_bursts, args=(fifo, 3, 5, 0.3, written), daemon=True)
    writer.start()
    seen: list[int] = []
    bursts_written_at_first_line: int | None = None
    with anyio.fail_after(10):
        async with InputReader(fifo) as reader:
            assert reader.statistics().total_bytes is None
            async for item in reader:
                assert isinstance(item, Prompt)
                if bursts_written_at_first_line is None:
                    bursts_written_at_first_line = len(written)
                seen.append(item.line)
    writer.join(5)
    assert seen == list(range(1, 16))
    # Streamed: the first lines came before the writer was done.
    assert bursts_written_at_first_line is not None and bursts_written_at_first_line < 3


@pytest.mark.anyio
async def test_a_named_pipe_whose_writer_never_comes_can_be_cancelled(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # If opening waited for a writer, this one lets it go after 5 s (and the test fails).
    rescue = threading.Timer(5, lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))
    rescue.start()
    started = time.monotonic()
    seen: list[Prompt | BadLine] = []
    try:
        with anyio.move_on_after(0.3) as scope:
            async with InputReader(fifo) as reader:
                async for item in reader:
                    seen.append(item)
    finally:
        rescue.cancel()
    assert time.monotonic() - started < 2
    assert scope.cancelled_caught
    assert seen == []


def test_a_named_pipe_read_without_an_event_loop_waits_for_its_late_writer(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written: list[int] = []
    late = threading.Timer(0.3, _write_bursts, args=(fifo, 2, 3, 0.2, written))
    late.start()
    with InputReader(fifo) as reader:  # opened before the writer comes
        assert [i.line for i in reader] == list(range(1, 7))
    late.join(5)


@pytest.mark.anyio
async def test_a_utf16_stdin_is_refused_before_any_line(stdin_pipe: int) -> None:
    data = '{"prompt": "a"}\n{"prompt": "b"}\n'.encode("utf-16-le")
    # The first line arrives in pieces: it is judged once whole.
    os.write(stdin_pipe, data[:3])

    def rest() -> None:
        os.write(stdin_pipe, data[3:])
        os.close(stdin_pipe)

    threading.Timer(0.2, rest).start()
    seen: list[Prompt | BadLine] = []
    with anyio.fail_after(5), pytest.raises(UsageError, match=r"stdin looks like UTF-16.*iconv"):
        async for item in InputReader("-"):
            seen.append(item)
    assert seen == []


def test_reads_from_an_open_stream(tmp_path: Path) -> None:
    path = _write(tmp_path, b'{"prompt": "a"}\n')
    with open(path, "rb") as stream:
        assert _summary(_read(stream)) == [("ok", 1, 1)]


# ---------------------------------------------------------------------------- check_input


def test_check_input_accepts_stdin_and_files(tmp_path: Path) -> None:
    check_input("-")
    check_input(_write(tmp_path, b""))


def test_check_input_missing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"input file not found: .*nope\.jsonl .*pass -"):
        check_input(tmp_path / "nope.jsonl")


def test_check_input_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        check_input(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_check_input_unreadable(tmp_path: Path) -> None:
    path = _write(tmp_path, b"{}")
    path.chmod(0)
    with pytest.raises(UsageError, match=r"cannot read input file .*permissions"):
        check_input(path)


def test_reader_checks_its_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="input file not found"):
        InputReader(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("data", "count"),
    [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n\n", 3), (b"a\n" * 5000, 5000)],
)
def test_count_lines(tmp_path: Path, data: bytes, count: int) -> None:
    assert count_lines(_write(tmp_path, data), chunk_size=64) == count


def test_count_lines_never_opens_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A writer waits in its open until a reader opens the pipe: counting must not be one.
    released = threading.Event()

    def writer() -> None:
        os.close(os.open(fifo, os.O_WRONLY))
        released.set()

    threading.Thread(target=writer, daemon=True).start()
    assert count_lines(fifo) is None
    assert count_lines("-") is None
    assert not released.wait(0.3)
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer go


def test_local_image_paths_resolve_against_the_input_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image as PILImage

    from lm_deluge_cli.io.reader import BadLine

    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    PILImage.new("RGB", (64, 32), "red").save(data / "imgs" / "cat.png")
    (data / "in.jsonl").write_bytes(
        b'{"id": 1, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},'
        b' {"type": "image", "path": "imgs/cat.png"}]}]}\n'
        b'{"id": 2, "messages": [{"role": "user", "content": [{"type": "image",'
        b' "path": "imgs/gone.png"}]}]}\n'
    )
    monkeypatch.chdir(tmp_path)  # not the input's folder: resolution must not use the cwd
    items = list(InputReader(str(data / "in.jsonl")))
    first, second = items
    assert isinstance(first, Prompt)
    image_part = first.messages[0]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert isinstance(second, BadLine) and "gone.png" in second.reason


@pytest.mark.anyio
async def test_the_first_batches_are_small_and_double(tmp_path: Path) -> None:
    # The first prompt arrives once 64 lines are parsed, not a whole batch of 1,000: a run's
    # first requests wait on that. Batches then double up to the batch size.
    data = b"".join(orjson.dumps({"prompt": str(i)}) + b"\n" for i in range(5000))
    read_by_then: list[int] = []
    async with InputReader(_write(tmp_path, data)) as reader:
        async for _ in reader:
            read_by_then.append(reader.statistics().lines)
    assert sorted(set(read_by_then)) == [64, 128, 256, 512, 1024, 2024, 3024, 4024, 5000]


@pytest.mark.anyio
async def test_a_stop_abandons_a_slow_batch_which_then_reads_no_further(tmp_path: Path) -> None:
    source = _write(tmp_path, b"".join(b'{"prompt": "p%d"}\n' % i for i in range(10)))
    release = threading.Event()
    parsed: list[int] = []

    def slow_parse(line_no: int, raw: bytes | bytearray) -> Prompt:
        parsed.append(line_no)
        release.wait(2)  # a line naming a huge image, say
        return Prompt(id=line_no, line=line_no, messages=[{"role": "user", "content": "x"}])

    reader = InputReader(source, parse=slow_parse)
    started = time.monotonic()
    with anyio.move_on_after(0.2):
        async for _ in reader:
            pass
    assert time.monotonic() - started < 5, "the stop waited for the batch"
    reader.close()
    release.set()
    deadline = time.monotonic() + 5
    while reader._in_thread and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    # The abandoned batch ended after its line at hand, and closed the input behind it.
    assert parsed == [1]
    assert reader._owned is None
