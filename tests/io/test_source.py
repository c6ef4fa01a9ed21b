"""The input's source: which inputs are streams, checks that never open a pipe, UTF-16."""

from __future__ import annotations

import codecs
import gzip
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io.source import check_input, is_stream, open_input, utf16_problem

LINE = '{"prompt": "hello there"}\n'


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


def test_a_closed_stdin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of a closed fd 0
    with pytest.raises(UsageError, match=r"stdin: it is closed; pipe the prompts in, or give -i"):
        check_input("-")


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


def _utf16(text: str, codec: str) -> bytes:
    return text.encode(codec)


@pytest.mark.parametrize(
    ("data", "utf16"),
    [
        (codecs.BOM_UTF16_LE + _utf16(LINE * 2, "utf-16-le"), True),
        (codecs.BOM_UTF16_BE + _utf16(LINE * 2, "utf-16-be"), True),
        (_utf16(LINE * 2, "utf-16-le"), True),
        (_utf16(LINE * 2, "utf-16-be"), True),
        (_utf16('{"prompt": "héllo"}\n', "utf-16-le"), True),
        (_utf16('\r\n  {"prompt": "你好"}\n', "utf-16-be"), True),
        (LINE.encode() * 2, False),
        ('{"prompt": "你好，世界"}\n'.encode(), False),
        (b"\xef\xbb\xbf" + LINE.encode(), False),
        (b"", False),
        (b"\x00", False),
        (b"\xff\xfe", False),
        (gzip.compress(LINE.encode() * 50, mtime=0), False),
        # A bad first line that starts like a byte-order mark, or holds NUL bytes, is one
        # bad line among good ones, not the sign of a UTF-16 file.
        (b"\xff\xfe\n" + LINE.encode(), False),
        (b"\xff\xfe\r\n" + LINE.encode(), False),
        (b'{"prompt": \x00a\x00b\x00c\x00\n' + LINE.encode(), False),
        # UTF-8 first, then a UTF-16 second line: only the start is judged.
        (LINE.encode() + _utf16(LINE, "utf-16-le"), False),
    ],
)
def test_utf16_is_told_apart(data: bytes, utf16: bool) -> None:
    assert (utf16_problem(data, "in.jsonl", stream=False) is not None) is utf16


def test_a_utf16_file_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    path = tmp_path / "my prompts.jsonl"
    path.write_bytes(LINE.encode("utf-16"))
    with pytest.raises(UsageError) as caught:
        check_input(path)
    message = str(caught.value)
    assert "looks like UTF-16" in message
    assert f"iconv -f UTF-16 -t UTF-8 '{path}' > '{tmp_path}/my prompts.utf8.jsonl'" in message


def test_a_utf16_stream_is_told_to_convert_on_the_way_in() -> None:
    message = utf16_problem(LINE.encode("utf-16"), "stdin", stream=True)
    assert message is not None
    assert message.startswith("stdin looks like UTF-16")
    assert "| iconv -f UTF-16 -t UTF-8 |" in message


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (LINE.encode("utf-16"), "UTF-16"),
        (LINE.encode("utf-16-le"), "UTF-16LE"),
        (LINE.encode("utf-16-be"), "UTF-16BE"),
    ],
)
def test_iconv_is_told_the_byte_order_when_there_is_no_mark(data: bytes, encoding: str) -> None:
    # iconv reads a byte-order mark; without one, its "UTF-16" is big-endian.
    message = utf16_problem(data, "in.jsonl", stream=False)
    assert message is not None
    assert f"iconv -f {encoding} -t UTF-8 in.jsonl > in.utf8.jsonl" in message
