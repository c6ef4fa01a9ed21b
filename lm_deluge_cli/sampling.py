"""Sampling values, checked and normalised the same way for job files, flags and input lines."""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_SAMPLES",
    "MAX_STOP_SEQUENCES",
    "MAX_TEMPERATURE",
    "MAX_TOP_LOGPROBS",
    "REASONING_EFFORTS",
    "check_sampling_value",
    "describe_value",
]

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
# The most samples a line may ask for (OpenAI's limit on n).
MAX_SAMPLES = 128
MAX_TEMPERATURE = 2.0
MAX_TOP_LOGPROBS = 20
# The fewest stop sequences any provider takes (OpenAI's limit).
MAX_STOP_SEQUENCES = 4


def check_sampling_value(name: str, value: Any) -> Any:
    """One sampling field's value, normalised; ValueError("must be …, got …") when invalid.

    Shared by job files, flags and input lines so that all three accept the same values.
    """
    if name == "temperature":
        if not _is_number(value) or not 0 <= value <= MAX_TEMPERATURE:
            raise ValueError(
                f"must be a number from 0 to {MAX_TEMPERATURE:g}, got {describe_value(value)}"
            )
        return float(value)
    if name == "top_p":
        if not _is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"must be a number from 0 to 1, got {describe_value(value)}")
        return float(value)
    if name == "samples":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SAMPLES:
            raise ValueError(
                f"must be an integer from 1 to {MAX_SAMPLES}, got {describe_value(value)}"
            )
        return value
    if name == "max_new_tokens":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"must be a positive integer, got {describe_value(value)}")
        return value
    if name in ("json_mode", "logprobs"):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {describe_value(value)}")
        return value
    if name == "top_logprobs":
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_TOP_LOGPROBS
        ):
            raise ValueError(
                f"must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {describe_value(value)}"
            )
        return value
    if name == "reasoning_effort":
        if value is not None and value not in REASONING_EFFORTS:
            raise ValueError(
                f"must be one of {', '.join(REASONING_EFFORTS)}, got {describe_value(value)}"
            )
        return value
    if name == "stop":
        return _stop(value)
    if name == "json_schema":
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"must be a JSON Schema object, got {describe_value(value)}")
        return value
    raise ValueError("is not a sampling field")


def _stop(value: Any) -> tuple[str, ...] | None:
    """A string or a list of strings (OpenAI's ``stop``) as a tuple; None or [] for none."""
    items = [value] if isinstance(value, str) else value
    if value is None or items == []:
        return None
    if (
        not isinstance(items, list | tuple)
        or not all(isinstance(item, str) and item for item in items)
        or len(items) > MAX_STOP_SEQUENCES
    ):
        raise ValueError(
            f"must be a non-empty string or a list of up to {MAX_STOP_SEQUENCES} "
            f"non-empty strings, got {describe_value(value)}"
        )
    return tuple(items)


def describe_value(value: Any) -> str:
    """A short description of a JSON value for error messages; never echoes big values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return "an empty string" if not value else f"the string {shown!r}"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an object"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
