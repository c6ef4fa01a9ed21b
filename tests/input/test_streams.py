"""Inputs that can be read only once (a named pipe, /dev/fd/N, stdin), end to end, and UTF-16.

A run reading a pipe is a real process: the pipe is opened by it, its writer is a thread
here that writes in bursts with pauses, and signals reach it as they would from a shell.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.errors import UsageError
from tests.cli_runner import run_cli
from tests.input.conftest import Ran

ARGS = ["run", "-m", "mock:fast", "--no-cache"]
RUN = [sys.executable, "-m", "lm_deluge_cli", *ARGS]


def _lines(first: int, count: int) -> bytes:
    rows = (
        json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) for i in range(first, first + count)
    )
    return "".join(row + "\n" for row in rows).encode()


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


class Bursts(threading.Thread):
    """Writes `bursts` bursts of `size` lines to a file descriptor (opened by `open_fd`,
    which may wait for the reader), pausing `pause_s` between them, then closes it."""

    def __init__(self, open_fd: Callable[[], int], bursts: int = 3, size: int = 5) -> None:
        super().__init__(daemon=True)
        self.open_fd, self.bursts, self.size = open_fd, bursts, size
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            fd = self.open_fd()
            try:
                for burst in range(self.bursts):
                    os.write(fd, _lines(burst * self.size, self.size))
                    time.sleep(0.25)
            finally:
                os.close(fd)
        except BaseException as exc:  # a reader that went away: the test says so
            self.error = exc


def _finish(proc: subprocess.Popen[bytes], timeout: float = 30) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_named_pipe_fed_in_bursts_ends_with_every_line(fifo: Path, tmp_path: Path) -> None:
    writer = Bursts(lambda: os.open(fifo, os.O_WRONLY))
    writer.start()
    env = {**os.environ, "LM_DELUGE_PROGRESS_INTERVAL": "0.2"}
    proc = subprocess.Popen(
        [*RUN, "-i", str(fifo), "-o", "out.jsonl"], env=env, stderr=subprocess.PIPE
    )
    _, stderr = _finish(proc)
    writer.join(5)
    assert writer.error is None, writer.error
    assert proc.returncode == 0, stderr.decode()
    assert sorted(r["id"] for r in _records(tmp_path / "out.jsonl")) == sorted(
        f"p{i}" for i in range(15)
    )
    # The progress goes on without a total while the pipe is read.
    assert re.search(rb"progress: \d+/\? ", stderr)


def test_sigterm_stops_a_run_whose_pipe_writer_has_not_come(fifo: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen([*RUN, "-i", str(fifo), "-o", "out.jsonl"], stderr=subprocess.PIPE)
    _wait_for(tmp_path / "out.jsonl")
    time.sleep(0.5)  # waiting for the writer by now
    proc.send_signal(signal.SIGTERM)
    _, stderr = _finish(proc, timeout=15)
    assert proc.returncode == 130, stderr.decode()
    assert b"resume with: lm-deluge run" in stderr
    assert b"Traceback" not in stderr


@pytest.mark.parametrize("kind", ["fifo", "/dev/fd"])
def test_a_rerun_from_a_pipe_skips_the_lines_already_done(
    fifo: Path, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "first.jsonl").write_bytes(_lines(0, 5))
    first = run_cli(*ARGS, "-i", "first.jsonl", "-o", "out.jsonl", "--quiet")
    assert first.returncode == 0, first.stderr.decode()
    keep: tuple[int, ...] = ()
    if kind == "fifo":
        source, writer = str(fifo), Bursts(lambda: os.open(fifo, os.O_WRONLY))
    else:
        # What `-i <(command)` hands over: a pipe the run inherits, named /dev/fd/N.
        read_end, write_end = os.pipe()
        source, writer, keep = f"/dev/fd/{read_end}", Bursts(lambda: write_end), (read_end,)
    proc = subprocess.Popen(
        [*RUN, "-i", source, "-o", "out.jsonl", "--json", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=keep,
    )
    for fd in keep:
        os.close(fd)
    writer.start()
    stdout, stderr = _finish(proc)
    writer.join(5)
    assert writer.error is None, writer.error
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert (summary["ok"], summary["skipped_already_done"]) == (10, 5)
    ids = [r["id"] for r in _records(tmp_path / "out.jsonl")]
    assert sorted(ids) == sorted(f"p{i}" for i in range(15))


def test_stdin_piped_in_bursts_ends_with_every_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*RUN, "-i", "-", "-o", "out.jsonl", "--quiet"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    for burst in range(3):
        proc.stdin.write(_lines(burst * 5, 5))
        proc.stdin.flush()
        time.sleep(0.25)
    _, stderr = _finish(proc)  # closes stdin: the end of the input
    assert proc.returncode == 0, stderr.decode()
    assert len(_records(tmp_path / "out.jsonl")) == 15


def test_a_utf16_file_is_refused_before_anything_runs(run_input: Callable[..., Ran]) -> None:
    with pytest.raises(UsageError, match=r"looks like UTF-16.*iconv -f UTF-16 -t UTF-8"):
        run_input('{"prompt": "a"}\n{"prompt": "b"}\n'.encode("utf-16"))


def test_a_utf16_stdin_exits_2_with_one_line_and_sends_nothing(tmp_path: Path) -> None:
    data = '{"prompt": "a"}\n{"prompt": "b"}\n'.encode("utf-16")
    result = run_cli(*ARGS, "-i", "-", "-o", "out.jsonl", "--quiet", stdin=data)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "error: stdin looks like UTF-16 text, but input must be UTF-8 JSONL; convert it on the "
        "way in: … | iconv -f UTF-16 -t UTF-8 | lm-deluge … -i -"
    ]
    assert _records(tmp_path / "out.jsonl") == []
