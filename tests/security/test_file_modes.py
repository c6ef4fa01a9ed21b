"""Files a run creates follow the user's umask but are never world-writable, even under
umask 000: the output, its lock, its manifest and an export."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lm_deluge_cli.io.export import export_latest
from lm_deluge_cli.io.manifest import manifest_path, write_manifest
from lm_deluge_cli.io.writer import ResultWriter, lock_path
from tests.cli_runner import run_cli


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask022", "umask002", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check(path: Path, umask: int) -> None:
    found = mode(path)
    assert not found & stat.S_IWOTH, f"{path.name} is world-writable ({found:o})"
    # Nothing the umask removes is granted.
    assert not found & umask, f"{path.name} ignores the umask ({found:o}, umask {umask:03o})"
    assert found & stat.S_IRUSR and found & stat.S_IWUSR


def test_output_lock_and_manifest(tmp_path: Path, umask: int) -> None:
    output = tmp_path / "out.jsonl"
    with ResultWriter(output):
        check(lock_path(output), umask)
        write_manifest(output, {"input": "in.jsonl"})
    check(output, umask)
    check(manifest_path(output), umask)
    # Group members keep what the umask gives them: the mode is not simply 0o600.
    if umask == 0o002:
        assert mode(output) & stat.S_IWGRP


def test_a_run_through_the_cli(tmp_path: Path, umask: int) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "hi"}\n')
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast", "--no-cache"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    check(tmp_path / "out.jsonl", umask)
    check(manifest_path(tmp_path / "out.jsonl"), umask)


def test_an_export(tmp_path: Path, umask: int) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "line": 1, "status": "ok", "completion": "x"}\n')
    os.chmod(output, 0o600)
    dest = tmp_path / "export.jsonl"
    export_latest(output, dest)
    check(dest, umask)
