"""Export the latest record per id, and summarise an output for ``lm-deluge status``.

Both stream the output; export keeps only an id → byte-offset table, then copies lines.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.io.idset import IdMap, id_hash
from lm_deluge_cli.io.manifest import read_manifest
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.reader import InputReader
from lm_deluge_cli.io.resume import iter_records, line_key, record_key, scan_output
from lm_deluge_cli.io.text_lines import IdLine, parse_id_line
from lm_deluge_cli.io.writer import FILE_MODE, write_error
from lm_deluge_cli.types import Prompt, id_key

__all__ = ["ExportSummary", "StatusReport", "export_latest", "summarize"]

PathArg = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote.

    With an input: `missing` counts input lines with no record yet (skipped), and
    `extra` counts ids in the output that no input line has (left out).
    """

    written: int
    missing: int
    extra: int
    destination: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The state of an output, and of its input when given (else those fields are None)."""

    records: int
    ids_ok: int
    ids_failed: int
    bad_input_lines: int
    invalid_lines: int
    torn_bytes: int
    errors_by_type: dict[str, int]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    input_prompts: int | None = None
    input_bad_lines: int | None = None
    remaining: int | None = None


def _input_reader(input: PathArg, output: PathArg) -> InputReader[Prompt] | InputReader[IdLine]:
    """The input as the command that wrote `output` read it: `run`'s prompts, or, for a
    tool's output (its manifest names the tool), lines read for their ids alone."""
    manifest = read_manifest(Path(output)) or {}
    if manifest.get("tool"):
        return InputReader(input, parse=parse_id_line)
    return InputReader(input)


def _input_key(item: Prompt | IdLine | BadLine) -> str:
    if not isinstance(item, BadLine):
        return item.key
    return line_key(item.line) if item.id is None else id_key(item.id)


def _index_latest(output: Path) -> tuple[IdMap, array[int]]:
    """Map each key to the offset of its latest record; list keys by first appearance."""
    latest = IdMap()
    order: array[int] = array("Q")
    for stored in iter_records(output):
        h = id_hash(record_key(stored.record))
        if latest.set_hash(h, stored.offset):
            order.append(h)
    return latest, order


@contextlib.contextmanager
def _atomic_destination(dest: PathArg) -> Iterator[Callable[[bytes], object]]:
    """Yield a write function; on success the file appears at `dest` complete, or not at all."""
    if os.fspath(dest) == "-":
        yield sys.stdout.buffer.write
        sys.stdout.buffer.flush()
        return
    target = Path(dest)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        # Created like the output (FILE_MODE less the umask), unlike mkstemp's 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError as exc:
        raise write_error("create a file next to", target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as sink:

            def write(data: bytes) -> None:
                try:
                    sink.write(data)
                except OSError as exc:
                    raise write_error("write", target, exc) from exc

            yield write
            try:
                sink.flush()
                os.fsync(sink.fileno())
            except OSError as exc:
                raise write_error("write", target, exc) from exc
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise write_error("replace", target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_latest(output: PathArg, dest: PathArg, input: PathArg | None = None) -> ExportSummary:
    """Write the latest record of each id in `output` to `dest` (``-`` for stdout).

    With `input`, records follow input order (one per input line that has a record);
    without it, the order in which ids first appear in the output. `dest` is replaced
    atomically: readers see the old file or the complete new one.
    """
    source = Path(output)
    if not source.is_file():
        raise UsageError(f"no results file at {source}; run the job first, or check the path")
    if os.fspath(dest) != "-" and Path(dest).exists() and os.path.samefile(source, dest):
        raise UsageError(
            f"cannot export {source} onto itself; choose another destination "
            "(a run appending to it would lose results)"
        )
    latest, order = _index_latest(source)
    written = missing = 0
    with open(source, "rb") as records, _atomic_destination(dest) as write:

        def copy(offset: int) -> None:
            records.seek(offset)
            write(records.readline())

        if input is None:
            for h in order:
                offset = latest.get_hash(h)
                if offset is not None:
                    copy(offset)
                    written += 1
        else:
            with _input_reader(input, output) as reader:
                for item in reader:
                    offset = latest.get_hash(id_hash(_input_key(item)))
                    if offset is None:
                        missing += 1
                    else:
                        copy(offset)
                        written += 1
    extra = len(latest) - written if input is not None else 0
    name = "<stdout>" if os.fspath(dest) == "-" else os.fspath(dest)
    return ExportSummary(written=written, missing=missing, extra=extra, destination=name)


def summarize(output: PathArg, input: PathArg | None = None) -> StatusReport:
    """Count what an output holds (read-only: nothing is repaired), and what is left to run."""
    state = scan_output(output, repair=False)
    input_prompts = input_bad = remaining = None
    if input is not None:
        remaining = 0
        with _input_reader(input, output) as reader:
            for item in reader:
                if not isinstance(item, BadLine) and not state.is_done(item):
                    remaining += 1
            stats = reader.statistics()
        input_prompts, input_bad = stats.prompts, stats.bad_lines
    return StatusReport(
        records=state.records,
        ids_ok=len(state.ok),
        ids_failed=state.failed,
        bad_input_lines=len(state.bad_lines),
        invalid_lines=state.invalid_lines,
        torn_bytes=state.torn_bytes,
        errors_by_type=state.errors_by_type(),
        cost_usd=state.cost_usd,
        input_tokens=state.input_tokens,
        output_tokens=state.output_tokens,
        input_prompts=input_prompts,
        input_bad_lines=input_bad,
        remaining=remaining,
    )
