"""The [limits] table and the limit flags → `Limits`: each field from its flag if given, else
from the table, else the default. `Limits` checks them; a refused one is named here as the
user wrote it (``--max-attempts``, ``job.toml: limits.max_attempts``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from lm_deluge_cli.config.checks import check_keys, table_of
from lm_deluge_cli.config.fields import AUTO, UNLIMITED, JobOverrides, Limits, rate_problem
from lm_deluge_cli.errors import ConfigError, InvalidValueError

__all__ = [
    "FILE_UNLIMITED",
    "FLAG_UNLIMITED",
    "file_rate",
    "flag_rate",
    "name_refused",
    "parse_limits",
]

_LIMIT_KEYS = tuple(f.name for f in fields(Limits))

_RATE_FIELDS = ("max_requests_per_minute", "max_tokens_per_minute")

# How a job file and a flag say "no limit" for a rate, in their errors.
FILE_UNLIMITED = f'"{UNLIMITED}"'
FLAG_UNLIMITED = "0 for unlimited"


def parse_limits(raw: Any, where: str, overrides: JobOverrides) -> Limits:
    table = table_of(raw, where, "limits")
    check_keys(table, _LIMIT_KEYS, where, "limits.")
    values: dict[str, Any] = {}
    flagged: set[str] = set()
    for key in _LIMIT_KEYS:
        flag = getattr(overrides, key)
        # `is not None`, not `or`: a flag given as 0 must be checked, not silently ignored.
        if flag is not None:
            values[key] = flag_rate(flag) if key in _RATE_FIELDS else flag
            flagged.add(key)
        elif key in table:
            values[key] = file_rate(table[key]) if key in _RATE_FIELDS else table[key]
    try:
        return Limits(**values)
    except InvalidValueError as exc:
        if exc.field in flagged:
            flag_name = "--" + exc.field.replace("_", "-")
            raise name_refused(exc, flag_name, FLAG_UNLIMITED, values) from None
        raise name_refused(exc, f"{where}: limits.{exc.field}", FILE_UNLIMITED, values) from None


def name_refused(
    exc: InvalidValueError, label: str, unlimited: str, values: Mapping[str, Any]
) -> ConfigError:
    """`exc` naming its field as `label`; a refused rate (whose value is in `values`) also
    says "no limit" as its source writes it (`unlimited`)."""
    if exc.field not in _RATE_FIELDS:
        return exc.at(label)
    return ConfigError(f"{label} {rate_problem(values[exc.field], unlimited)}")


def file_rate(value: Any) -> Any:
    """A per-minute rate as a job file writes it: "unlimited" is None; the rest is for
    `Limits` (or `ModelEntry`) to check."""
    return None if value == UNLIMITED else value


def flag_rate(value: float | str) -> float | str | None:
    """A per-minute rate as a flag gives it: auto (in any case), or a number where 0 is None
    (unlimited); text that is neither is left as it is, for `Limits` to refuse."""
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return AUTO
        try:
            value = float(value)
        except ValueError:
            return value
    return None if value == 0 else value
