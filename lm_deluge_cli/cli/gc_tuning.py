"""The garbage collector while a command runs a job: start-up's objects set aside, and
collections far rarer.

With a thousand requests in flight, each request's objects (aiohttp's request and response,
its coroutine, its record) live about as long as the request: long enough to be promoted
through the collector's generations, where each collection traverses them again, beside
the tens of thousands the run keeps (its memory of recent answers). At the standard
thresholds (700, 10, 10) that was about 30% of a run's CPU in bench/bench_latency.py.
Reference counting frees nearly all of those objects anyway; the collector is only for
cycles, and it still runs, after `RUN_THRESHOLDS[0]` new objects instead of 700.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_THRESHOLDS", "fewer_collections"]

# The collector's thresholds during a run (generation 0, 1, 2); the standard ones are
# (700, 10, 10). A young collection every 50,000 new objects costs a few megabytes of
# cyclic garbage at most.
RUN_THRESHOLDS = (50_000, 10, 10)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """For the block: freeze what start-up made (modules, the job: live for the whole
    process, so never traversed again) and raise the collector's thresholds; both are
    restored afterwards."""
    before = gc.get_threshold()
    # Someone else's frozen objects (an embedding program's) stay theirs to unfreeze.
    ours = gc.get_freeze_count() == 0
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if ours:
            gc.unfreeze()
