"""ResultWriter: one write per record, the lock, permissions, write errors, fsync, move_aside."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

import lm_deluge_cli
from lm_deluge_cli.errors import OutputLockedError, OutputWriteError
from lm_deluge_cli.io.writer import OutputLock, ResultWriter, lock_path, move_aside

REPO = Path(lm_deluge_cli.__file__).resolve().parents[1]


def _record(n: int) -> dict[str, object]:
    return {"id": n, "line": n, "status": "ok", "completion": "x" * n}


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_writes_one_line_per_record_and_appends(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as writer:
        writer.write(_record(1))
        writer.write(_record(2))
        assert writer.records_written == 2
    with ResultWriter(out) as writer:
        writer.write(_record(3))
    assert [r["id"] for r in _lines(out)] == [1, 2, 3]


def test_each_record_is_a_single_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as writer:
        monkeypatch.setattr(os, "write", spy)
        for n in (1, 500, 200_000):
            writer.write(_record(n))
        monkeypatch.undo()
    assert len(writes) == 3
    assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    assert b"".join(writes) == out.read_bytes()


def test_lock_file_holds_our_pid_and_goes_away(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out)
    assert lock_path(out).read_text().strip() == str(os.getpid())
    writer.close()
    writer.close()  # idempotent
    assert not lock_path(out).exists()
    with pytest.raises(ValueError, match="closed"):
        writer.write(_record(1))


def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultWriter(out), pytest.raises(OutputLockedError, match="another run is writing"):
        ResultWriter(out)
    with ResultWriter(out):
        pass  # released


_HOLDER = textwrap.dedent(
    """
    import os, signal, sys
    from lm_deluge_cli.io.writer import ResultWriter
    writer = ResultWriter(sys.argv[1])
    for n in range(int(sys.argv[2])):
        writer.write({"id": n, "status": "ok"})
    print("ready", flush=True)
    if sys.argv[3] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.readline()
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding a writer on out.jsonl, having written 3 records."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "out.jsonl"), "3", "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_lock_held_by_another_process(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(OutputLockedError) as info:
        ResultWriter(out)
    message = str(info.value)
    assert str(out) in message
    assert f"process {holder.pid}" in message
    assert str(lock_path(out)) in message


def _other_name(tmp_path: Path, how: str) -> Path:
    """Another name reaching tmp_path/out.jsonl: a link of some kind, or another spelling."""
    out = tmp_path / "out.jsonl"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if how == "symlink":
        (tmp_path / "link.jsonl").symlink_to("out.jsonl")
        return tmp_path / "link.jsonl"
    if how == "symlink in another directory":
        (elsewhere / "out.jsonl").symlink_to(out)
        return elsewhere / "out.jsonl"
    if how == "hard link":
        os.link(out, elsewhere / "same.jsonl")
        return elsewhere / "same.jsonl"
    if how == "symlinked directory":
        (tmp_path / "dir-link").symlink_to(tmp_path)
        return tmp_path / "dir-link" / "out.jsonl"
    return elsewhere / ".." / "out.jsonl"  # another spelling of the same path


OTHER_NAMES = [
    "symlink",
    "symlink in another directory",
    "hard link",
    "symlinked directory",
    "another spelling",
]


@pytest.mark.parametrize("how", OTHER_NAMES)
def test_lock_holds_the_file_whatever_name_reaches_it(
    tmp_path: Path, holder: subprocess.Popen[str], how: str
) -> None:
    other = _other_name(tmp_path, how)
    with pytest.raises(OutputLockedError) as info:
        ResultWriter(other)
    message = str(info.value)
    assert "another run is writing" in message
    assert str(other) in message
    if sys.platform == "linux":  # the holder of a lock on the file is read from /proc/locks
        assert f"process {holder.pid}" in message
    assert len(_lines(tmp_path / "out.jsonl")) == 3  # nothing written by the refused writer


def test_an_output_created_through_a_dangling_symlink_is_locked(tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to("out.jsonl")  # the file does not exist yet
    with ResultWriter(link) as writer:
        writer.write(_record(1))
        with pytest.raises(OutputLockedError):
            ResultWriter(tmp_path / "out.jsonl")
    with ResultWriter(tmp_path / "out.jsonl"):
        pass  # released


def test_two_new_outputs_racing_to_create_one_file(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    (tmp_path / "link.jsonl").symlink_to("out.jsonl")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(tmp_path / name), "1", "hold"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("out.jsonl", "link.jsonl")
    ]
    try:
        ready = [proc.stdout.readline().strip() == "ready" for proc in procs if proc.stdout]
        assert sorted(ready) == [False, True]  # one holds the new file, the other was refused
        refused = procs[ready.index(False)]
        assert refused.wait(timeout=30) != 0
        assert refused.stderr is not None and "OutputLockedError" in refused.stderr.read()
        assert len(_lines(tmp_path / "out.jsonl")) == 1
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_sigkilled_holder_leaves_no_stale_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as writer:
        writer.write({"id": 3, "status": "ok"})
    assert [r["id"] for r in _lines(out)] == [0, 1, 2, 3]


def test_records_survive_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _HOLDER, str(out), "1000", "kill"], env=env, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL
    assert [r["id"] for r in _lines(out)] == list(range(1000))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_output_respects_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        with ResultWriter(tmp_path / "out.jsonl") as writer:
            writer.write(_record(1))
    finally:
        os.umask(old)
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == mode


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputWriteError, match=r"cannot create the lock file .*ro/out"):
            ResultWriter(folder / "out.jsonl")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.EROFS, "read-only; choose an output path on a writable disk"),
        (errno.EACCES, "check the permissions"),
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_open_errors_name_path_cause_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "open", refuse)
    out = tmp_path / "out.jsonl"
    with pytest.raises(OutputWriteError) as info:
        ResultWriter(out)
    assert str(out) in str(info.value)
    assert os.strerror(code) in str(info.value)
    assert hint in str(info.value)


def test_output_open_failure_releases_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.mkdir()  # a directory cannot be opened for writing
    with pytest.raises(OutputWriteError, match="cannot open the output file"):
        ResultWriter(out)
    OutputLock(out).release()  # the lock is free again


def test_disk_full_for_real(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    out = tmp_path / "out.jsonl"
    out.symlink_to("/dev/full")
    with ResultWriter(out, fsync="none") as writer, pytest.raises(OutputWriteError) as info:
        writer.write(_record(1))
    assert "the disk is full" in str(info.value)
    assert str(out) in str(info.value)


def test_write_error_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    real_write = os.write
    calls = 0

    def fill_up(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with ResultWriter(out, fsync="none") as writer:
        monkeypatch.setattr(os, "write", fill_up)
        writer.write(_record(1))
        writer.write(_record(2))
        with pytest.raises(OutputWriteError, match="disk is full"):
            writer.write(_record(3))
        monkeypatch.undo()
    assert [r["id"] for r in _lines(out)] == [1, 2]


@pytest.mark.parametrize(("policy", "syncs"), [("none", 0), ("end", 1), ("always", 4)])
def test_fsync_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, syncs: int
) -> None:
    out = tmp_path / "out.jsonl"
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        if os.path.samestat(os.fstat(fd), out.stat()):
            synced.append(fd)
        real_fsync(fd)

    writer = ResultWriter(out, fsync=policy)
    monkeypatch.setattr(os, "fsync", spy)
    for n in range(3):
        writer.write(_record(n))
    writer.close()
    assert len(synced) == syncs


def test_unknown_fsync_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync must be one of none, end, always"):
        ResultWriter(tmp_path / "out.jsonl", fsync="sometimes")


def test_dash_writes_to_stdout_without_a_lock(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    with ResultWriter("-") as writer:
        writer.write(_record(1))
        assert writer.name == "<stdout>"
    assert capsysbinary.readouterr().out == orjson.dumps(_record(1)) + b"\n"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- move_aside

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_move_aside(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text("old\n")
    moved = move_aside(out, now=NOW)
    assert moved == tmp_path / "results.jsonl.20250304T050607Z.bak"
    assert moved.read_text() == "old\n"
    assert not out.exists()


def test_move_aside_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    for n in range(3):
        out.write_text(f"run {n}\n")
        move_aside(out, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.jsonl.20250304T050607Z-1.bak",
        "results.jsonl.20250304T050607Z-2.bak",
        "results.jsonl.20250304T050607Z.bak",
    ]
    assert (tmp_path / "results.jsonl.20250304T050607Z-2.bak").read_text() == "run 2\n"


def test_move_aside_missing_file(tmp_path: Path) -> None:
    assert move_aside(tmp_path / "nothing.jsonl") is None


def test_start_over_moves_the_old_output_aside_without_dropping_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": 1}\n')
    with ResultWriter(out) as writer:
        moved = writer.start_over()
        assert moved is not None and moved.read_bytes() == b'{"id": 1}\n'
        assert out.read_bytes() == b""
        # Still locked: another run cannot take the output now.
        with pytest.raises(OutputLockedError):
            ResultWriter(out)
        writer.write({"id": 2})
    assert orjson.loads(out.read_bytes()) == {"id": 2}


def test_start_over_on_an_empty_output_moves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as writer:
        assert writer.start_over() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_start_over_keeps_the_new_file_locked_under_any_name(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": 1}\n')
    (tmp_path / "link.jsonl").symlink_to("out.jsonl")
    with ResultWriter(out) as writer:
        writer.start_over()
        with pytest.raises(OutputLockedError, match="another name"):
            ResultWriter(tmp_path / "link.jsonl")
        # The old file, moved aside, is no longer the output: nothing holds it.
        moved = next(tmp_path.glob("out.jsonl.*.bak"))
        ResultWriter(moved).close()


def test_replace_contents_keeps_the_new_file_locked_under_any_name(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    (tmp_path / "link.jsonl").symlink_to("out.jsonl")
    with ResultWriter(out) as writer:
        writer.write({"id": 2})
        writer.replace_contents([b'{"id": 1}\n', b'{"id": 2}\n'])
        with pytest.raises(OutputLockedError, match="another name"):
            ResultWriter(tmp_path / "link.jsonl")
        writer.write({"id": 3})
    assert [r["id"] for r in _lines(out)] == [1, 2, 3]


def test_a_closed_stdout_is_refused_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of a closed fd 1
    with pytest.raises(OutputWriteError, match="stdout is closed; give -o FILE"):
        ResultWriter("-")
