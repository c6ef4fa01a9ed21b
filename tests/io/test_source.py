"""The input's source: which inputs are streams, and checks that never open a pipe."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lm_deluge_cli.io.source import check_input, is_stream, open_input

LINE = '{"prompt": "hello there"}\n'


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe; a writer still waiting in its open when the test ends is let go."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))


def test_streams_are_anything_but_a_regular_file(tmp_path: Path, fifo: Path) -> None:
    regular = tmp_path / "in.jsonl"
    regular.write_text(LINE)
    read_end, write_end = os.pipe()
    try:
        assert is_stream("-")
        assert is_stream(fifo)
        assert is_stream(f"/dev/fd/{read_end}")
        assert is_stream(os.devnull)
        assert not is_stream(regular)
        assert not is_stream(tmp_path / "missing.jsonl")
    finally:
        os.close(read_end)
        os.close(write_end)


def test_opening_a_pipe_does_not_wait_for_its_writer(fifo: Path) -> None:
    opened = threading.Event()

    def open_it() -> None:
        open_input(fifo).close()
        opened.set()

    threading.Thread(target=open_it, daemon=True).start()
    assert opened.wait(5), "open_input waited for the pipe's writer"


def test_a_pipe_is_checked_without_being_opened(fifo: Path) -> None:
    # A writer waiting in its open is let through by any reader's open, and then
    # writes into a pipe that reader may close: its first lines would be lost.
    released = threading.Event()

    def writer() -> None:
        os.close(os.open(fifo, os.O_WRONLY))
        released.set()

    threading.Thread(target=writer, daemon=True).start()
    time.sleep(0.1)
    check_input(fifo)
    assert not released.wait(0.3)
