"""scan_output: latest record wins, bad lines are remembered, torn last lines are repaired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import bad_line_result, error_result, ok_result, to_json
from lm_deluge_cli.io.resume import (
    ResumeState,
    StoredRecord,
    iter_records,
    record_key,
    scan_output,
)
from lm_deluge_cli.io.writer import ResultWriter
from lm_deluge_cli.results import Completion, Usage
from lm_deluge_cli.types import Prompt


def _prompt(id_: str | int, line: int = 1) -> Prompt:
    return Prompt(id=id_, line=line, messages=[{"role": "user", "content": "hi"}])


def _ok(id_: str | int, line: int = 1, cost: float | None = 0.5) -> dict[str, Any]:
    completion = Completion.of("answer", "stop", Usage(10, 2))
    return to_json(
        ok_result(
            _prompt(id_, line), completion, model="m", attempts=1, latency_s=0.1, cost_usd=cost
        )
    )


def _err(id_: str | int, kind: str = "rate_limit", line: int = 1) -> dict[str, Any]:
    return to_json(
        error_result(_prompt(id_, line), model="m", error_type=kind, message="no", attempts=3)
    )


def _write(path: Path, records: list[dict[str, Any]], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + tail)
    return path


def test_missing_output_is_an_empty_state(tmp_path: Path) -> None:
    state = scan_output(tmp_path / "none.jsonl")
    assert state.records == 0
    assert len(state.ok) == 0
    assert state.failed == 0
    assert not (tmp_path / "none.jsonl").exists()


def test_latest_record_wins(tmp_path: Path) -> None:
    out = _write(
        tmp_path / "out.jsonl",
        [
            _err("a"),
            _ok("a"),  # failed, then succeeded: done
            _ok("b"),
            _err("b", "server_error"),  # succeeded, then failed: failed
            _err("c", "timeout"),
            _err("c", "rate_limit"),  # the latest error's type counts
            _ok(5),
            _err("5", "timeout"),  # "5" is not 5
        ],
    )
    state = scan_output(out)
    assert state.records == 8
    assert state.is_done(_prompt("a"))
    assert not state.is_done(_prompt("b"))
    assert not state.is_done(_prompt("c"))
    assert state.is_done(_prompt(5))
    assert not state.is_done(_prompt("5"))
    assert len(state.ok) == 2
    assert state.failed == 3
    assert state.errors_by_type() == {"rate_limit": 1, "server_error": 1, "timeout": 1}
    # Spend counts every record, superseded ones too: it was spent.
    assert state.cost_usd == pytest.approx(1.5)
    assert (state.input_tokens, state.output_tokens) == (30, 6)


def test_an_ok_record_without_an_answer_is_not_done(tmp_path: Path) -> None:
    # Written before empty answers became errors: a tool call dropped, say.
    empty = {**_ok("a"), "completion": None}
    tool_call = {**_ok("b"), "completion": None, "tool_calls": [{"id": "c", "name": "f"}]}
    out = _write(tmp_path / "out.jsonl", [empty, tool_call, {**_ok("c"), "completion": ""}])
    state = scan_output(out)
    assert not state.is_done(_prompt("a"))
    assert state.is_done(_prompt("b"))
    assert not state.is_done(_prompt("c"))
    assert state.errors_by_type() == {"empty_answer": 2}


def test_bad_input_lines_are_remembered_by_line(tmp_path: Path) -> None:
    out = _write(
        tmp_path / "out.jsonl",
        [
            to_json(bad_line_result(BadLine(3, "line 3: not valid JSON (x)"))),
            to_json(bad_line_result(BadLine(8, "line 8: 'messages' must be …", "x"))),
            _ok("y", line=9),
        ],
    )
    state = scan_output(out)
    assert state.bad_line_reported(3)
    assert 8 in state.bad_lines
    assert 9 not in state.bad_lines
    # A bad line with an id is also that id's latest (failed) record.
    assert state.failed == 1
    assert state.errors_by_type() == {"invalid_input": 1}


def test_torn_last_line_is_truncated(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.jsonl", [_ok("a"), _ok("b")])
    good = out.read_bytes()
    torn = orjson.dumps(_ok("c"))[:37]
    out.write_bytes(good + torn)
    state = scan_output(out)
    assert state.repaired_bytes == len(torn)
    assert state.torn_bytes == len(torn)
    assert state.records == 2
    assert not state.is_done(_prompt("c"))
    assert out.read_bytes() == good


def test_complete_last_record_gets_its_newline(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.jsonl", [_ok("a")], tail=orjson.dumps(_ok("b")))
    state = scan_output(out)
    assert state.newline_added
    assert state.repaired_bytes == 0
    assert state.records == 2
    assert state.is_done(_prompt("b"))
    assert out.read_bytes().endswith(b"}\n")
    assert [s.record["id"] for s in iter_records(out)] == ["a", "b"]


def test_without_repair_nothing_changes(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.jsonl", [_ok("a")], tail=b'{"id": "b", "sta')
    before = out.read_bytes()
    state = scan_output(out, repair=False)
    assert state.torn_bytes == 16
    assert state.repaired_bytes == 0
    assert state.records == 1
    assert out.read_bytes() == before


def test_invalid_middle_lines_are_counted_and_left(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(
        orjson.dumps(_ok("a"))
        + b"\n{not json\n\n[1, 2]\n"
        + b'{"id": 1.5, "status": "ok"}\n'
        + b'{"id": null, "status": "error"}\n'  # a null id needs a line number
        + orjson.dumps(_ok("b"))
        + b"\n"
    )
    before = out.read_bytes()
    state = scan_output(out)
    assert state.invalid_lines == 4
    assert state.records == 2
    assert out.read_bytes() == before


def test_resume_then_append_keeps_the_file_valid(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.jsonl", [_ok("a")], tail=b'{"id": "b", "sta')
    with ResultWriter(out) as writer:
        state = scan_output(out)
        assert state.repaired_bytes == 16
        writer.write(_ok("b"))
    assert [s.record["id"] for s in iter_records(out)] == ["a", "b"]
    assert scan_output(out).invalid_lines == 0


def test_iter_records_offsets_and_sizes(tmp_path: Path) -> None:
    records = [_ok("a"), {"junk": True}, _err(7), to_json(bad_line_result(BadLine(4, "line 4: x")))]
    out = _write(tmp_path / "out.jsonl", records, tail=b'{"torn')
    data = out.read_bytes()
    stored = list(iter_records(out, chunk_size=16))
    assert [s.record for s in stored] == [records[0], records[2], records[3]]
    for s in stored:
        assert isinstance(s, StoredRecord)
        assert orjson.loads(data[s.offset : s.offset + s.size]) == s.record
        assert data[s.offset + s.size - 1 : s.offset + s.size] == b"\n"
    assert [record_key(s.record) for s in stored] == ['"a"', "7", "line:4"]


def test_iter_records_missing_file(tmp_path: Path) -> None:
    assert list(iter_records(tmp_path / "none.jsonl")) == []


def test_unreadable_output_without_repair(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read results file"):
        scan_output(tmp_path, repair=False)  # a directory


def test_state_is_compact(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.jsonl", [_ok(f"id-{n}", cost=None) for n in range(20_000)])
    state = scan_output(out)
    assert isinstance(state, ResumeState)
    assert len(state.ok) == 20_000
    assert state.ok.memory_bytes < 20_000 * 24
