"""Checks the embedding and rerank formats share: lists of texts, vector sizes, result counts.

Each returns the value, or a short description of what is wrong that the format words in its
provider's own error body.
"""

from __future__ import annotations

from typing import Any

from lm_deluge_cli.mock.wire import DEFAULT_DIMENSIONS

__all__ = ["MAX_DIMENSIONS", "Problem", "read_dimensions", "read_flag", "read_texts", "read_top"]

# The largest vector the mock will write (the largest real models stop at 3072 or 4096).
MAX_DIMENSIONS = 4096


class Problem(str):
    """What is wrong with one field, in plain words (the format adds its own wording)."""

    __slots__ = ()


def read_texts(value: Any, limit: int | None, one_allowed: bool = True) -> list[str] | Problem:
    """A non-empty list of non-empty strings (or one string, when ``one_allowed``) of at most
    ``limit`` items."""
    if isinstance(value, str) and one_allowed:
        value = [value]
    if not isinstance(value, list) or not value:
        return Problem("must be a non-empty list of strings")
    if limit is not None and len(value) > limit:
        return Problem(f"has {len(value)} items, more than the maximum of {limit}")
    for i, text in enumerate(value):
        if not isinstance(text, str):
            return Problem(f"item {i} is not a string")
        if not text:
            return Problem(f"item {i} is an empty string")
    return value


def read_dimensions(value: Any) -> int | Problem:
    """The requested vector size, or the default when none is given."""
    if value is None:
        return DEFAULT_DIMENSIONS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return Problem(f"must be a positive integer, got {value!r}")
    if value > MAX_DIMENSIONS:
        return Problem(f"must be at most {MAX_DIMENSIONS}, got {value}")
    return value


def read_top(value: Any) -> int | Problem | None:
    """How many results to return (``top_n``, ``top_k``): None for all of them."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return Problem(f"must be a positive integer, got {value!r}")
    return value


def read_flag(value: Any, default: bool) -> bool | Problem:
    """A boolean field, or its default when it is absent."""
    if value is None:
        return default
    if not isinstance(value, bool):
        return Problem(f"must be true or false, got {value!r}")
    return value
