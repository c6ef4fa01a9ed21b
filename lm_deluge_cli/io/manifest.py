"""A small sidecar beside an output file recording which input it belongs to, for `status`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from lm_deluge_cli.io.writer import FILE_MODE

__all__ = ["manifest_path", "read_manifest", "write_manifest"]


def manifest_path(output: Path) -> Path:
    """`results.jsonl` → `results.jsonl.run.json`."""
    return output.with_name(output.name + ".run.json")


def write_manifest(output: Path, data: dict[str, Any]) -> None:
    """Replace the sidecar atomically; a failure to write it never stops a run."""
    path = manifest_path(output)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # Recreated each time, so an earlier run's tmp file cannot keep a looser mode.
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as sink:
            sink.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
    except OSError:
        pass


def read_manifest(output: Path) -> dict[str, Any] | None:
    """The sidecar's content, or None when absent or unreadable."""
    try:
        data = orjson.loads(manifest_path(output).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
