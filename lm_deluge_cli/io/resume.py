"""Read an existing output to learn what is done, and repair a torn last line, for resume.

The latest record for an id wins: an id that failed and then succeeded is done; one
that succeeded and then failed is failed. An ok record that holds no answer (written before
empty answers became errors) counts as an ``empty_answer`` failure, so it is sent again.
Only the output is read, never the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard

import orjson

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io.idset import IdMap, IdSet, IntSet, id_hash
from lm_deluge_cli.io.lines import DEFAULT_CHUNK_SIZE, Line, iter_lines, read_function
from lm_deluge_cli.io.records import EMPTY_ANSWER, INVALID_INPUT, Record, has_answer
from lm_deluge_cli.io.writer import write_error
from lm_deluge_cli.types import Prompt, id_key

if TYPE_CHECKING:
    from lm_deluge_cli.io.text_lines import IdLine

__all__ = [
    "ResumeState",
    "StoredRecord",
    "iter_records",
    "line_key",
    "record_key",
    "scan_output",
]

# Error types are few in practice; a corrupted file must not grow this table without bound.
_MAX_ERROR_TYPES = 1000
_OTHER = "other"


def line_key(line: int) -> str:
    """The key of an input line that has no id of its own (never equal to an id key)."""
    return f"line:{line}"


def record_key(record: Record) -> str:
    """The key a record is stored under: its id's key, or its line's when the id is null."""
    rid = record["id"]
    return line_key(record["line"]) if rid is None else id_key(rid)


def _is_record(obj: Any) -> bool:
    """Whether a parsed line looks like one of our records (the fields resume relies on)."""
    if not isinstance(obj, dict) or obj.get("status") not in ("ok", "error"):
        return False
    rid = obj.get("id", False)
    line = obj.get("line")
    if rid is None:
        return isinstance(line, int) and not isinstance(line, bool)
    return isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record in an output file: where its line starts, its size (with newline), its data."""

    offset: int
    size: int
    record: Record


def _complete_lines(stream: BinaryIO, chunk_size: int) -> Iterator[tuple[int, Line, bool]]:
    """``(offset, line, complete)`` for a snapshot of the file's current length.

    Only the last line can be incomplete (no newline: torn, or still being written).
    """
    size = os.fstat(stream.fileno()).st_size
    for offset, line in iter_lines(read_function(stream, size), chunk_size=chunk_size):
        yield offset, line, offset + len(line) < size


def iter_records(
    path: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[StoredRecord]:
    """Stream the records of an output file in file order.

    Lines that are not records, and an incomplete last line, are skipped. A missing
    file has no records.
    """
    try:
        stream = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below, in a generator)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot read results file {path}: {exc.strerror}") from exc
    with stream:
        for offset, line, complete in _complete_lines(stream, chunk_size):
            if not complete or not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if _is_record(obj):
                yield StoredRecord(offset, len(line) + 1, obj)


@dataclass(slots=True)
class ResumeState:
    """What an existing output says about each id, kept compactly.

    `ok` holds ids whose latest record is ok, `failed_ids` those whose latest record
    is an error (mapped to a code for the error type), `bad_lines` the numbers of
    input lines already reported as invalid (``line in state.bad_lines``).
    """

    ok: IdSet = field(default_factory=IdSet)
    failed_ids: IdMap = field(default_factory=IdMap)
    bad_lines: IntSet = field(default_factory=IntSet)
    records: int = 0
    # Lines in the middle of the file that are not records: left in place, reported.
    invalid_lines: int = 0
    # Bytes of an incomplete last line; `repaired_bytes` of them were truncated away.
    torn_bytes: int = 0
    repaired_bytes: int = 0
    # The last line was a complete record missing only its newline, which was appended.
    newline_added: bool = False
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    _error_types: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @property
    def failed(self) -> int:
        """How many ids' latest record is an error."""
        return len(self.failed_ids)

    def is_done(self, item: Prompt | IdLine) -> bool:
        """Whether the line's id already has an ok record (skip it on resume)."""
        return item.key in self.ok

    def bad_line_reported(self, line: int) -> bool:
        """Whether input line `line` was already reported as invalid."""
        return line in self.bad_lines

    def errors_by_type(self) -> dict[str, int]:
        """How many failed ids have each error type (of their latest record), most first."""
        names = {code: name for name, code in self._error_types.items()}
        counts: dict[str, int] = {}
        for code in self.failed_ids.values():
            name = names.get(code, _OTHER)
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def add(self, record: Record) -> None:
        """Account for one record (as `_is_record` accepts), in file order."""
        self.records += 1
        cost = record.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost_usd += cost
        usage = record.get("usage")
        if isinstance(usage, dict):
            self.input_tokens += _count(usage.get("input_tokens"))
            self.output_tokens += _count(usage.get("output_tokens"))
        ok = record["status"] == "ok"
        error = record.get("error")
        etype = error.get("type") if isinstance(error, dict) else None
        if ok and not has_answer(record):
            ok, etype = False, EMPTY_ANSWER
        elif not isinstance(etype, str):
            etype = "unknown"
        line = record.get("line")
        if etype == INVALID_INPUT and _is_count(line):
            self.bad_lines.add(line)
        rid = record["id"]
        if rid is None:
            return
        h = id_hash(id_key(rid))
        if ok:
            self.failed_ids.pop_hash(h)
            self.ok.add_hash(h)
        else:
            self.ok.discard_hash(h)
            self.failed_ids.set_hash(h, self._error_code(etype))

    def _error_code(self, name: str) -> int:
        code = self._error_types.get(name)
        if code is None:
            if len(self._error_types) >= _MAX_ERROR_TYPES:
                name = _OTHER
            code = self._error_types.setdefault(name, len(self._error_types))
        return code


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> int:
    return value if _is_count(value) else 0


def scan_output(
    path: str | os.PathLike[str], *, repair: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> ResumeState:
    """Stream an existing output into a ResumeState; a missing file gives an empty state.

    With `repair`, an incomplete last line is fixed before new records are appended:
    truncated away when it is not a complete JSON object (a write torn by a crash), or
    given its missing newline when it is. Call it while holding the output's lock
    (inside a ResultWriter), so no other run appends meanwhile.
    """
    state = ResumeState()
    try:
        stream = open(path, "r+b" if repair else "rb", buffering=0)  # noqa: SIM115
    except FileNotFoundError:
        return state
    except OSError as exc:
        if repair:
            raise write_error("open the results file", path, exc) from exc
        raise UsageError(f"cannot read results file {path}: {exc.strerror}") from exc

    with stream:
        for offset, line, complete in _complete_lines(stream, chunk_size):
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if complete:
                if _is_record(obj):
                    state.add(obj)
                else:
                    state.invalid_lines += 1
            elif isinstance(obj, dict):
                if repair:
                    _repair(stream, path, truncate_at=None)
                    state.newline_added = True
                if _is_record(obj):
                    state.add(obj)
                else:
                    state.invalid_lines += 1
            else:
                state.torn_bytes = len(line)
                if repair:
                    _repair(stream, path, truncate_at=offset)
                    state.repaired_bytes = len(line)
    return state


def _repair(stream: BinaryIO, path: str | os.PathLike[str], *, truncate_at: int | None) -> None:
    """Truncate the file at `truncate_at`, or (None) append the missing final newline."""
    fd = stream.fileno()
    try:
        if truncate_at is None:
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, b"\n")
        else:
            os.ftruncate(fd, truncate_at)
        os.fsync(fd)
    except OSError as exc:
        raise write_error("repair the last line of", path, exc) from exc
