"""Small checks every part of a job file shares: known keys, tables, numbers, JSON files."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_deluge_cli.errors import ConfigError

__all__ = [
    "check_keys",
    "is_number",
    "opt_str",
    "positive_int",
    "read_schema",
    "table_of",
    "unknown_key",
]


def check_keys(table: Mapping[str, Any], known: Sequence[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(unknown_key(prefix + key, [prefix + k for k in known], where))


def unknown_key(key: str, known: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
    return f"{where}: unknown key {key!r}{hint}"


def table_of(value: Any, where: str, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    return value


def opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string path")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive_int(value: Any, label: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{label} must be a positive integer, got {value!r}")
    return value


def read_schema(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {path} as JSON: {exc}") from None
