"""Local files named by input lines: only regular files are read, and only up to a size
checked before reading. A device (/dev/zero, /dev/urandom), a named pipe, a folder, a socket
or a file over the limit makes its line an ``invalid_input`` record naming the path and the
reason, without reading it; the lines around it are answered as usual."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli import images
from lm_deluge_cli.images import MAX_READ_BYTES, MediaError, read_media

MB = 1024 * 1024
# The run's memory ceiling: a run that reads /dev/zero dies at it instead of taking the machine.
ADDRESS_SPACE = 4096 * MB


def image(path: str) -> dict[str, Any]:
    return {"type": "image", "path": path}


def pdf(path: str) -> dict[str, Any]:
    return {"type": "file", "path": path}


def line(id_: str, part: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_, "messages": [{"role": "user", "content": [part]}]}


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    try:
        yield path
    finally:
        server.close()


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_special_and_oversized_files_are_refused_and_their_neighbours_answered(
    tmp_path: Path, unix_socket: Path
) -> None:
    os.mkfifo(tmp_path / "pipe")  # no writer: opening it to read would wait for ever
    (tmp_path / "folder").mkdir()
    # Sparse: over the limit on paper, nothing on disk.
    with open(tmp_path / "huge.png", "wb") as f:
        f.truncate(MAX_READ_BYTES["image"] + 1)
    with open(tmp_path / "huge.pdf", "wb") as f:
        f.truncate(MAX_READ_BYTES["file"] + 1)
    bad = {
        "zero": (image("/dev/zero"), "/dev/zero", "a character device, not a regular file"),
        "random": (pdf("/dev/urandom"), "/dev/urandom", "a character device"),
        "pipe": (image("pipe"), "pipe", "a named pipe, not a regular file"),
        "folder": (pdf("folder"), "folder", "a directory, not a regular file"),
        "socket": (image(str(unix_socket)), str(unix_socket), "a socket, not a regular file"),
        "huge-image": (image("huge.png"), "huge.png", "52,428,801 bytes, over the limit of 50 MB"),
        "huge-pdf": (pdf("huge.pdf"), "huge.pdf", "33,554,433 bytes, over the limit of 32 MB"),
    }
    rows = [{"id": "first", "prompt": "before"}]
    rows += [line(id_, part) for id_, (part, _, _) in bad.items()]
    rows += [{"id": "last", "prompt": "after"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast", "--no-cache", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "lm_deluge_cli", *args],
        cwd=tmp_path,
        env={**env, "LM_DELUGE_TOKENIZER": "heuristic"},
        capture_output=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 1, done.stderr.decode()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    records = {r["id"]: r for r in map(json.loads, lines)}
    assert sorted(records) == sorted(["first", "last", *bad])
    assert records["first"]["status"] == records["last"]["status"] == "ok"
    for id_, (_, named, reason) in bad.items():
        error = records[id_]["error"]
        assert error["type"] == "invalid_input", id_
        assert repr(named) in error["message"] and reason in error["message"], error["message"]


def test_the_size_is_checked_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(images.MAX_READ_BYTES, "file", 10)
    (tmp_path / "small.pdf").write_bytes(b"%PDF-1.4 !")
    with open(tmp_path / "large.pdf", "wb") as f:
        f.truncate(64 * MB)  # sparse: the size on paper, read from the file's status
    assert read_media(tmp_path / "small.pdf", "file").data == b"%PDF-1.4 !"
    with pytest.raises(MediaError, match=r"'large.pdf' .*: it is 67,108,864 bytes, over the"):
        read_media("large.pdf", "file", base_dir=tmp_path)


def test_a_file_whose_size_says_nothing_is_read_no_further_than_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /proc files report a size of 0 and are read in pieces: the limit still holds.
    environ = Path("/proc/self/environ")
    if not environ.is_file() or len(environ.read_bytes()) <= 16:
        pytest.skip("needs a /proc file longer than 16 bytes")
    monkeypatch.setitem(images.MAX_READ_BYTES, "file", 16)
    with pytest.raises(MediaError, match=r"over the limit of .* \(16 bytes\) for one file"):
        read_media(environ, "file")


@pytest.mark.parametrize("target", ["folder", "socket"])
def test_read_media_refuses_what_is_not_a_regular_file(
    tmp_path: Path, unix_socket: Path, target: str
) -> None:
    # (Pipes and devices are tried in a separate process above: before this check they hung
    # or filled memory.)
    (tmp_path / "folder").mkdir()
    name = "folder" if target == "folder" else str(unix_socket)
    with pytest.raises(MediaError, match=f"it is a {target}|it is a directory"):
        read_media(name, "image", base_dir=tmp_path)
    with pytest.raises(MediaError, match="not a regular file"):
        read_media(name, "image", base_dir=tmp_path)
