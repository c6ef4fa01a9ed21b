"""`--shard K/N`: a deterministic split of the input by id, so N processes each take one part.

A line belongs to shard ``sha256(id) mod N`` (the id's JSON text, so ``5`` and ``"5"`` are
different ids; a line without a usable id, such as a duplicate, goes by its line number).
Every process computes the same split from the same input whatever the machine, and the
N parts together hold every line exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from lm_deluge_cli.errors import ConfigError, InvalidValueError
from lm_deluge_cli.types import id_key

__all__ = ["Shard", "parse_shard"]


class _Line(Protocol):
    @property
    def id(self) -> str | int | None: ...

    @property
    def line(self) -> int: ...


_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Shard:
    """Part `index` (from 0) of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            count = max(self.count, 1)
            raise InvalidValueError(
                "shard",
                f"{self}: K counts from 0 and must be below N (0/{count} to {count - 1}/{count})",
            )

    def owns(self, item: _Line) -> bool:
        """Whether this shard runs (or reports) `item`."""
        if self.count == 1:
            return True
        key = id_key(item.id) if item.id is not None else f"line {item.line}"
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, where: str = "--shard") -> Shard:
    """``"K/N"`` with 0 ≤ K < N; a ConfigError that says so otherwise."""
    match = _SHARD.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{where} must be K/N, e.g. 0/4 (the first of four parts), got {text!r}")
    try:
        return Shard(int(match.group(1)), int(match.group(2)))
    except InvalidValueError as exc:
        raise exc.at(where) from None
