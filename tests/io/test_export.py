"""export_latest (order, atomicity) and summarize (the numbers behind `status`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import OutputWriteError, UsageError
from lm_deluge_cli.io import export as export_module
from lm_deluge_cli.io.export import ExportSummary, export_latest, summarize
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import bad_line_result, error_result, ok_result, to_json
from lm_deluge_cli.results import Completion, Usage
from lm_deluge_cli.types import Prompt


def _prompt(id_: str | int, line: int) -> Prompt:
    return Prompt(id=id_, line=line, messages=[])


def _ok(id_: str | int, line: int, text: str = "answer") -> dict[str, Any]:
    completion = Completion.of(text, "stop", Usage(1, 1))
    return to_json(ok_result(_prompt(id_, line), completion, model="m", attempts=1, latency_s=0.1))


def _err(id_: str | int, line: int, kind: str = "rate_limit") -> dict[str, Any]:
    return to_json(
        error_result(_prompt(id_, line), model="m", error_type=kind, message="no", attempts=2)
    )


def _jsonl(path: Path, rows: list[Any], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + tail)
    return path


def _ids(path: Path) -> list[Any]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """Results out of input order, with retries, a bad line and a torn tail."""
    return _jsonl(
        tmp_path / "out.jsonl",
        [
            _err("c", 3),
            _ok("a", 1, "first try"),
            to_json(bad_line_result(BadLine(4, "line 4: not valid JSON (x)"))),
            _ok("c", 3, "second try"),
            _ok("zz", 99),  # not in the input
            _err("b", 2, "timeout"),
        ],
        tail=b'{"id": "d", "sta',
    )


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'{"id": "a", "prompt": "1"}\n'
        b'{"id": "b", "prompt": "2"}\n'
        b'{"id": "c", "prompt": "3"}\n'
        b"{broken\n"
        b'{"id": "d", "prompt": "5"}\n'
        b'{"id": "e", "prompt": "6"}\n'
    )
    return path


def test_export_in_order_of_first_appearance(output: Path, tmp_path: Path) -> None:
    dest = tmp_path / "export.jsonl"
    summary = export_latest(output, dest)
    assert summary == ExportSummary(written=5, missing=0, extra=0, destination=str(dest))
    assert _ids(dest) == ["c", "a", None, "zz", "b"]
    rows = [orjson.loads(line) for line in dest.read_bytes().splitlines()]
    assert rows[0]["completion"] == "second try"  # the latest record for "c"
    assert rows[4]["status"] == "error"


def test_export_in_input_order(output: Path, input_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "export.jsonl"
    summary = export_latest(output, dest, input_file)
    assert _ids(dest) == ["a", "b", "c", None]
    assert [orjson.loads(line)["line"] for line in dest.read_bytes().splitlines()] == [1, 2, 3, 4]
    assert summary.written == 4
    assert summary.missing == 2  # d (torn away) and e
    assert summary.extra == 1  # zz


def test_export_to_stdout(output: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    summary = export_latest(output, "-")
    assert summary.destination == "<stdout>"
    assert len(capsysbinary.readouterr().out.splitlines()) == 5


def test_export_never_touches_the_output(output: Path, tmp_path: Path) -> None:
    before = output.read_bytes()
    export_latest(output, tmp_path / "export.jsonl")
    assert output.read_bytes() == before


def test_export_replaces_the_destination_atomically(
    output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "export.jsonl"
    dest.write_bytes(b"previous export\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputWriteError, match="disk is full"):
        export_latest(output, dest)
    assert dest.read_bytes() == b"previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl", "out.jsonl"]

    monkeypatch.undo()
    export_latest(output, dest)
    assert len(_ids(dest)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl", "out.jsonl"]


def test_failure_mid_export_leaves_no_temp_file(
    output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing_input(*args: object, **kwargs: object) -> None:
        raise UsageError("input file not found")

    monkeypatch.setattr(export_module, "InputReader", missing_input)
    with pytest.raises(UsageError):
        export_latest(output, tmp_path / "export.jsonl", tmp_path / "in.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_export_file_mode_follows_the_umask(output: Path, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        export_latest(output, tmp_path / "export.jsonl")
    finally:
        os.umask(old)
    assert (tmp_path / "export.jsonl").stat().st_mode & 0o777 == 0o640


def test_export_refuses_to_overwrite_the_output(output: Path) -> None:
    with pytest.raises(UsageError, match="onto itself"):
        export_latest(output, output)


def test_export_needs_an_output(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no results file"):
        export_latest(tmp_path / "none.jsonl", tmp_path / "export.jsonl")


def test_summarize_output_only(output: Path) -> None:
    report = summarize(output)
    assert report.records == 6
    assert (report.ids_ok, report.ids_failed) == (3, 1)
    assert report.bad_input_lines == 1
    assert report.torn_bytes == 16
    assert report.errors_by_type == {"timeout": 1}
    assert report.input_prompts is None
    assert report.remaining is None


def test_summarize_with_input(output: Path, input_file: Path) -> None:
    before = output.read_bytes()
    report = summarize(output, input_file)
    assert report.input_prompts == 5
    assert report.input_bad_lines == 1
    assert report.remaining == 3  # b failed, d and e not run
    assert output.read_bytes() == before  # status never repairs


def test_summarize_before_any_run(tmp_path: Path, input_file: Path) -> None:
    report = summarize(tmp_path / "none.jsonl", input_file)
    assert report.records == 0
    assert report.remaining == 5
