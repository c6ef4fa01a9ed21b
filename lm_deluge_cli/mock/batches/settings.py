"""How the mock's OpenAI Files and Batches APIs behave: processing time, limits, and the
failures a batch client must survive."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lm_deluge_cli.errors import ConfigError

__all__ = ["BatchFaults", "BatchSettings"]

# OpenAI's documented limits for one batch input file.
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024


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
    - ``max_requests`` / ``max_file_bytes``: OpenAI's limits on an input file.
    - ``faults``: the failures of the batch endpoints themselves (`BatchFaults`).
    - ``seed``: seeds the per-line failure draws.
    """

    processing_s: float = 1.0
    line_error_rate: float = 0.0
    expire_fraction: float = 0.0
    faults: BatchFaults = BatchFaults()
    max_requests: int = MAX_REQUESTS
    max_file_bytes: int = MAX_FILE_BYTES
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.processing_s < math.inf:
            raise ConfigError("mock batch processing_s must be a number of seconds >= 0")
        for name in ("line_error_rate", "expire_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"mock batch {name} must be between 0 and 1")
        for name in ("max_requests", "max_file_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mock batch {name} must be a whole number >= 1")
