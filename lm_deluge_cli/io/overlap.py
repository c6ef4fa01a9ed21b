"""Does an existing output belong to this input? Its ids, counted against the input's.

Resuming onto the output of another input would send every line again and mix two jobs'
results in one file; an input with lines removed leaves results that `export` will not
show. Both are worth saying before anything is sent. This reads the input once more, only
for ids (a line's ``id``, else ``custom_id``, else its line number, as the reader takes
them), and only when the output already holds results: so only a regular file, never a
stream (stdin, a pipe), which the run itself must read (see `io.source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lm_deluge_cli.io.idset import IdSet, id_hash
from lm_deluge_cli.io.lines import iter_lines
from lm_deluge_cli.io.parse import line_id
from lm_deluge_cli.io.resume import ResumeState
from lm_deluge_cli.types import id_key

__all__ = ["Overlap", "first_output_id", "output_overlap"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Overlap:
    """How many of the output's ids the input holds."""

    output_ids: int
    in_input: int

    @property
    def foreign(self) -> int:
        """Ids with results in the output that no input line has."""
        return self.output_ids - self.in_input


def output_overlap(input_path: Path, state: ResumeState) -> Overlap:
    """Count the output's ids (ok or failed) that the input at `input_path` holds."""
    total = len(state.ok) + len(state.failed_ids)
    found = IdSet()
    if total:
        with open(input_path, "rb") as stream:
            for number, (_, line) in enumerate(iter_lines(stream.read), start=1):
                key = _line_key(bytes(line), number)
                if key is None:
                    continue
                h = id_hash(key)
                if state.ok.contains_hash(h) or state.failed_ids.get_hash(h) is not None:
                    found.add_hash(h)
    return Overlap(total, len(found))


def first_output_id(output: Path) -> Any:
    """The id of the output's first record, as an example for a message (None if none)."""
    with open(output, "rb") as stream:
        for _, line in iter_lines(stream.read):
            try:
                record = orjson.loads(bytes(line))
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("id") is not None:
                return record["id"]
    return None


def _line_key(line: bytes, number: int) -> str | None:
    line = line.removeprefix(_BOM).strip()
    if not line:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    value = line_id(obj, number)
    return None if value is None else id_key(value)
