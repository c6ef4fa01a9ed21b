"""Resuming onto outputs that are not simply an earlier run of the same input: one cut off
at an arbitrary byte, and one written for a different input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_runner import run_cli
from tests.faults.support import MODEL, expected_completion, read_records
from tests.loopback import Loopback

IDS = 6


def write_input(path: Path, prefix: str) -> list[str]:
    """Prompts with ids ``{prefix}0`` … (their text is `expected_completion`'s)."""
    rows = [{"id": f"{prefix}{i}", "prompt": f"question number {i}"} for i in range(IDS)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [row["id"] for row in rows]


@dataclass(frozen=True)
class Ran:
    """A finished command: its exit code and its stderr, as text."""

    returncode: int
    stderr: str


@pytest.fixture
def run_into_out(
    loopback: Callable[..., Loopback], cli_env: Callable[..., dict[str, str]]
) -> tuple[Loopback, Callable[[str], Ran]]:
    """A loopback provider, and ``run(input_name)``: `lm-deluge run` of that input into
    out.jsonl against it."""
    server = loopback()
    env = cli_env(OPENAI_BASE_URL=server.url)

    def run(source: str) -> Ran:
        done = run_cli("run", "-m", MODEL, "-i", source, "-o", "out.jsonl", "--no-cache", env=env)
        return Ran(done.returncode, done.stderr.decode())

    return server, run


def test_an_output_cut_at_any_byte_resumes_with_the_records_before_the_cut_kept(
    run_into_out: tuple[Loopback, Callable[[str], Ran]], tmp_path: Path
) -> None:
    server, run = run_into_out
    write_input(tmp_path / "in.jsonl", "p")
    assert run("in.jsonl").returncode == 0
    output = tmp_path / "out.jsonl"
    whole = output.read_bytes()
    # Two and a half records survive (as from a copy or a disk that lost the rest).
    ends = [i + 1 for i, byte in enumerate(whole) if byte == ord("\n")]
    cut = ends[1] + (ends[2] - ends[1]) // 2
    output.write_bytes(whole[:cut])
    server_before = server.stats()["requests_seen"]

    resumed = run("in.jsonl")
    assert resumed.returncode == 0, resumed.stderr
    assert "repaired a torn last line" in resumed.stderr
    after = output.read_bytes()
    assert after.startswith(whole[: ends[1]])
    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"p{i}" for i in range(IDS))
    assert all(r["completion"] == expected_completion(int(r["id"][1:])) for r in records)
    assert server.stats()["requests_seen"] - server_before == IDS - 2


def test_an_output_mixing_in_another_input_is_kept_whole(
    run_into_out: tuple[Loopback, Callable[[str], Ran]], tmp_path: Path
) -> None:
    # The new input shares one line with the old one: the run goes on with a warning,
    # nothing is lost, and export leaves the old input's other ids out, saying so.
    _, run = run_into_out
    write_input(tmp_path / "a.jsonl", "a")
    write_input(tmp_path / "b.jsonl", "b")
    shared = (tmp_path / "a.jsonl").read_text().splitlines(keepends=True)[0]
    with open(tmp_path / "b.jsonl", "a") as extra:
        extra.write(shared)
    assert run("a.jsonl").returncode == 0
    output = tmp_path / "out.jsonl"
    first = output.read_bytes()
    second = run("b.jsonl")
    assert second.returncode == 0
    assert f"{IDS - 1} ids in out.jsonl are not in b.jsonl" in " ".join(second.stderr.split())
    assert output.read_bytes().startswith(first)
    ids = [r["id"] for r in read_records(output)]
    assert sorted(ids) == sorted([f"a{i}" for i in range(IDS)] + [f"b{i}" for i in range(IDS)])
    exported = run_cli("export", "out.jsonl", "-o", "final.jsonl")
    assert exported.returncode == 0
    assert f"{IDS - 1} ids in the output are not in the input (left out)" in (
        exported.stderr.decode()
    )
    assert [r["id"] for r in read_records(tmp_path / "final.jsonl")] == [
        *(f"b{i}" for i in range(IDS)),
        "a0",
    ]


def test_an_output_of_another_input_is_refused_with_an_explanation(
    run_into_out: tuple[Loopback, Callable[[str], Ran]], tmp_path: Path
) -> None:
    server, run = run_into_out
    write_input(tmp_path / "a.jsonl", "a")
    write_input(tmp_path / "b.jsonl", "b")
    assert run("a.jsonl").returncode == 0
    output = tmp_path / "out.jsonl"
    first = output.read_bytes()
    sent = server.stats()["requests_seen"]

    second = run("b.jsonl")
    assert second.returncode == 2
    message = " ".join(second.stderr.split())
    assert "out.jsonl" in message and "b.jsonl" in message
    assert f"{IDS} ids" in message and "a0" in message  # how many, and an example
    assert "--fresh" in message and "-o" in message  # how to go on
    assert output.read_bytes() == first
    assert server.stats()["requests_seen"] == sent


def test_foreign_ids_in_the_output_are_reported_when_the_inputs_overlap(
    run_into_out: tuple[Loopback, Callable[[str], Ran]], tmp_path: Path
) -> None:
    _, run = run_into_out
    write_input(tmp_path / "in.jsonl", "p")
    assert run("in.jsonl").returncode == 0
    # Two lines are dropped from the input before the next run.
    lines = (tmp_path / "in.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "in.jsonl").write_text("".join(lines[2:]))
    second = run("in.jsonl")
    assert second.returncode == 0
    message = " ".join(second.stderr.split())
    assert "2 ids in out.jsonl are not in in.jsonl" in message
