"""The garbage collector's settings while a command runs a job.

Python collects its youngest objects every 700 allocations beyond frees, and every tenth
of those collections walks everything that survived. A run allocates a few dozen objects
per line (a request, a response, a record) that reference counting frees at once; at
thousands of lines a second the collector's walks took a quarter of the CPU while finding
almost nothing to free. During a run the youngest objects are collected every
`YOUNG_THRESHOLD` allocations instead, and what exists when the run starts (modules, the
model registry, the job) is set aside so no collection walks it. Memory stays bounded:
cycles are still collected, later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "run_collector"]

YOUNG_THRESHOLD = 50_000


@contextmanager
def run_collector() -> Iterator[None]:
    """Collector settings for the block (a command's run); the previous ones after it."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
