"""OpenAI's Files and Batches APIs in the mock provider, processing compressed to seconds:
uploads, batch lifecycle, output and error files, validation, expiry, cancellation, and
faults on the batch endpoints."""

from lm_deluge_cli.mock.batches.api import BatchAnswer, BatchStats, MockBatches
from lm_deluge_cli.mock.batches.settings import BatchFaults, BatchSettings

__all__ = ["BatchAnswer", "BatchFaults", "BatchSettings", "BatchStats", "MockBatches"]
