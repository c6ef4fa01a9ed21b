"""An output's ids counted against the input's: the same rules as the reader's."""

from __future__ import annotations

import json
from pathlib import Path

from lm_deluge_cli.io.overlap import first_output_id, output_overlap
from lm_deluge_cli.io.resume import scan_output


def write(path: Path, lines: list[object]) -> Path:
    path.write_bytes(
        b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)
    )
    return path


def test_ids_by_id_custom_id_and_line_number(tmp_path: Path) -> None:
    output = write(
        tmp_path / "out.jsonl",
        [
            {"id": "a", "line": 1, "status": "ok"},
            {"id": 7, "line": 2, "status": "error", "error": {"type": "x"}},
            {"id": 3, "line": 3, "status": "ok"},  # a line-number id
            {"id": "gone", "line": 4, "status": "ok"},
            {"id": "7", "line": 5, "status": "ok"},  # "7" is not 7
        ],
    )
    state = scan_output(output)
    inp = write(
        tmp_path / "in.jsonl",
        [
            b"\xef\xbb\xbf" + json.dumps({"id": "a", "prompt": "x"}).encode(),
            {"custom_id": 7, "body": {}},
            {"prompt": "no id: line 3"},
            b"not json",
            {"id": True, "prompt": "a bad id counts as none"},
        ],
    )
    overlap = output_overlap(inp, state)
    assert (overlap.output_ids, overlap.in_input, overlap.foreign) == (5, 3, 2)
    assert first_output_id(output) == "a"
