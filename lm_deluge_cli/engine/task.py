"""The hook a tool (extract, translate, score) plugs into a run: its own input lines, the
prompt it makes of each, records it answers without a request, and its fields on each record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt

__all__ = ["Answered", "LineParser", "Task"]

# (line number, raw line) → an item with id, line and key, or a BadLine naming the problem.
LineParser = Callable[[int, bytes | bytearray], Any]


@dataclass(frozen=True, slots=True)
class Answered:
    """A line's final record, made without a request (e.g. a text already in the target
    language, passed through by translate)."""

    record: Result


class Task(Protocol):
    """What a tool adds to `run`. Every method is pure and fast: it runs on the event loop."""

    def parser(self, base_dir: Path | None, files_root: Path | None) -> LineParser:
        """How the tool reads its input lines; `base_dir` is the input file's folder (for
        images that lines name), `files_root` the folder they must stay under (None: any)."""
        ...

    def prepare(self, item: Any) -> Prompt | Answered | BadLine:
        """The prompt for one parsed line, or its record when no request is needed."""
        ...

    def finish(self, record: Result) -> Result:
        """The record as written: `run`'s fields plus the tool's own (also for errors)."""
        ...
