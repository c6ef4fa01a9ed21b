"""How the mock's OpenAI Files and Batches APIs behave: processing time, limits, and the
failures a batch client must survive."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.settings import check_type

__all__ = ["BatchFaults", "BatchSettings"]

# OpenAI's documented limits for one batch input file.
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
# …and for an embeddings batch, the texts across all its requests.
MAX_EMBEDDING_INPUTS = 50_000


@dataclass(frozen=True, slots=True)
class BatchFaults:
    """Faults on the batch endpoints, each on the first N calls (then they behave):

    - ``refuse_uploads`` / ``upload_status``: ``POST /v1/files`` is refused with this
      status (a 5xx or a 400).
    - ``poll_errors``: ``GET /v1/batches/{id}`` is answered with a 500.
    - ``cut_downloads``: a download of a batch's output or error file is cut short in the
      middle of a line.
    """

    refuse_uploads: int = 0
    upload_status: int = 500
    poll_errors: int = 0
    cut_downloads: int = 0

    def __post_init__(self) -> None:
        for name in ("refuse_uploads", "poll_errors", "cut_downloads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"mock batch {name} must be a whole number >= 0")
        if not 400 <= self.upload_status <= 599:
            raise ConfigError("mock batch upload_status must be an HTTP status from 400 to 599")


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """The batch side of the mock provider; by default a batch completes in about a second
    and nothing fails.

    - ``processing_s``: seconds from creation to the end (a tenth validating, seven tenths
      in progress, a fifth finalizing); 0 ends a batch at the first look after creation.
    - ``line_error_rate``: fraction of lines answered with a 500 (they go to the error file).
    - ``expire_fraction``: fraction of lines left unprocessed; above 0 a batch ends
      ``expired`` and those lines are in its error file with code ``batch_expired``.
    - ``max_requests`` / ``max_file_bytes`` / ``max_embedding_inputs``: OpenAI's limits on
      an input file (the last: texts across an embeddings batch).
    - ``faults``: the failures of the batch endpoints themselves (`BatchFaults`).
    - ``seed``: seeds the per-line failure draws.
    """

    processing_s: float = 1.0
    line_error_rate: float = 0.0
    expire_fraction: float = 0.0
    faults: BatchFaults = BatchFaults()
    max_requests: int = MAX_REQUESTS
    max_file_bytes: int = MAX_FILE_BYTES
    max_embedding_inputs: int = MAX_EMBEDDING_INPUTS
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.processing_s < math.inf:
            raise ConfigError("mock batch processing_s must be a number of seconds >= 0")
        for name in ("line_error_rate", "expire_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"mock batch {name} must be between 0 and 1")
        for name in ("max_requests", "max_file_bytes", "max_embedding_inputs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mock batch {name} must be a whole number >= 1")

    @classmethod
    def from_mapping(cls, table: Any) -> BatchSettings:
        """Settings from a model's ``mock.batch`` table (its ``faults`` a table too); a wrong
        key or type raises ConfigError."""
        values = _read(table, _KINDS, "batch")
        if "faults" in values:
            values["faults"] = BatchFaults(**_read(values["faults"], _FAULT_KINDS, "batch.faults"))
        return cls(**values)


_KINDS: Mapping[str, type] = {
    "processing_s": float,
    "line_error_rate": float,
    "expire_fraction": float,
    "faults": dict,
    "max_requests": int,
    "max_file_bytes": int,
    "max_embedding_inputs": int,
    "seed": int,
}
_FAULT_KINDS: Mapping[str, type] = dict.fromkeys(
    ("refuse_uploads", "upload_status", "poll_errors", "cut_downloads"), int
)


def _read(table: Any, kinds: Mapping[str, type], where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"mock.{where} must be a table, got {table!r}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in kinds:
            raise ConfigError(f"mock.{where}: unknown key {key!r}; known keys: {', '.join(kinds)}")
        values[key] = check_type(f"{where}.{key}", value, kinds[key], False)
    return values
