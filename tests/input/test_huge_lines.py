"""A 50 MB line, valid or broken, is read and answered (or refused) like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lm_deluge_cli.errors import EXIT_SOME_FAILED
from tests.cli_runner import run_cli
from tests.input.conftest import run_bytes

FIFTY_MB = 50 * 1024 * 1024


def test_a_50_mb_line_gets_one_record_and_its_neighbours_too() -> None:
    huge = json.dumps({"id": "huge", "prompt": "word " * (FIFTY_MB // 5)}).encode()
    broken = b'{"id": "torn", "prompt": "' + b"x" * FIFTY_MB  # never closed
    data = b"\n".join(
        [
            json.dumps({"id": "before", "prompt": "hi"}).encode(),
            huge,
            broken,
            json.dumps({"id": "after", "prompt": "bye"}).encode(),
        ]
    )
    # Unlimited tokens per minute: under a token rate the 10M-token estimate of the huge
    # prompt is paid for by pacing the lines after it for minutes, as intended.
    ran = run_bytes(data, max_tokens_per_minute=0)
    by_line = {record["line"]: record for record in ran.records}
    assert sorted(by_line) == [1, 2, 3, 4]
    assert len(ran.records) == 4
    assert by_line[1]["status"] == by_line[4]["status"] == "ok"
    # The huge prompt is either answered or refused with a reason: never dropped.
    assert by_line[2]["id"] == "huge"
    assert by_line[2]["status"] == "ok" or by_line[2]["error"]["message"]
    assert by_line[3]["status"] == "error"
    message = by_line[3]["error"]["message"]
    assert message.startswith("line 3: not valid JSON")
    # The reason names the problem without quoting the line back.
    assert len(message) < 500
    assert ran.exit_code == EXIT_SOME_FAILED


def test_the_cli_exits_1_on_a_file_with_bad_lines_and_0_on_a_clean_one(
    tmp_path: Path,
) -> None:
    env = {"LM_DELUGE_TOKENIZER": "heuristic", "PATH": "/usr/bin:/bin"}

    def run(data: bytes) -> tuple[int, list[dict[str, Any]]]:
        source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        source.write_bytes(data)
        output.unlink(missing_ok=True)
        args = ["run", "-i", str(source), "-o", str(output), "-m", "mock:fast", "--no-cache"]
        done = run_cli(*args, env=env)
        records = [json.loads(line) for line in output.read_bytes().splitlines()]
        return done.returncode, records

    clean = b'\xef\xbb\xbf{"id": 1, "prompt": "a"}\r\n\r\n{"id": 2, "prompt": "b"}'
    code, records = run(clean)
    assert code == 0
    assert sorted(r["line"] for r in records) == [1, 3]

    dirty = clean + b'\n{"id": 2, "prompt": "again"}\n\xff\n'
    code, records = run(dirty)
    assert code == 1
    assert sorted(r["line"] for r in records) == [1, 3, 4, 5]
