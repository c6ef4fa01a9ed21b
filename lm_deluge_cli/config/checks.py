"""Small checks the job's values and its file share: each value's fields (a positive integer,
a rate, true or false …) and a file's shape (known keys, tables, JSON files)."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_deluge_cli.errors import ConfigError, InvalidValueError
from lm_deluge_cli.sampling import check_sampling_value, describe_value
from lm_deluge_cli.types import SAMPLING_FIELDS

__all__ = [
    "check_bool",
    "check_keys",
    "check_number",
    "check_positive_int",
    "check_sampling",
    "is_number",
    "opt_str",
    "read_schema",
    "table_of",
    "unknown_key",
]

# --- a value's fields: each raises InvalidValueError naming the field ----------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_positive_int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidValueError(field, f"must be a positive integer, got {describe_value(value)}")
    return value


def check_number(value: Any, field: str, what: str, *, zero: bool = False) -> float:
    """A finite number above 0 (or from 0 with `zero`), as a float; `what` is what the error
    says it must be ("a positive number of seconds")."""
    if not is_number(value) or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise InvalidValueError(field, f"must be {what}, got {describe_value(value)}")
    return float(value)


def check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueError(field, f"must be true or false, got {describe_value(value)}")
    return value


def check_sampling(values: Mapping[str, Any], field: str) -> dict[str, Any]:
    """Sampling overrides (any of SamplingParams' fields), each value normalised; an
    InvalidValueError names `field` for an unknown key, ``field.key`` for a bad value."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in SAMPLING_FIELDS:
            raise InvalidValueError(field, "has " + _unknown(key, SAMPLING_FIELDS))
        try:
            clean[key] = check_sampling_value(key, value)
        except ValueError as exc:
            raise InvalidValueError(f"{field}.{key}", str(exc)) from None
    return clean


# --- a job file's shape -----------------------------------------------------------------------


def check_keys(table: Mapping[str, Any], known: Sequence[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(unknown_key(prefix + key, [prefix + k for k in known], where))


def unknown_key(key: str, known: Sequence[str], where: str) -> str:
    return f"{where}: {_unknown(key, known)}"


def _unknown(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
    return f"unknown key {key!r}{hint}"


def table_of(value: Any, where: str, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    return value


def opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string path")
    return value


def read_schema(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {path} as JSON: {exc}") from None
