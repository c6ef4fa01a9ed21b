"""What `embed` and `rerank` do around their pipelines: the output (locked, resumed, the
manifest), the input read by their own line parser, progress, and the report."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio

from lm_deluge_cli.config import Job
from lm_deluge_cli.engine.pipeline import RunOutcome
from lm_deluge_cli.engine.reuse import Reuse, open_reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.reader import InputReader
from lm_deluge_cli.io.records import Record
from lm_deluge_cli.io.writer import ResultWriter
from lm_deluge_cli.progress import ProgressView, watched
from lm_deluge_cli.runner import JobReport, check_paths, count_input, open_output, skip_done
from lm_deluge_cli.tokens import estimate_text_tokens

__all__ = ["Pipeline", "run_batching_job"]

# (source, sink, stats, stack, reuse) → the pipeline's outcome.
Pipeline = Callable[
    [AsyncIterable[Any], Callable[[list[Record]], None], RunStats, AsyncExitStack, Reuse],
    Awaitable[RunOutcome],
]


async def run_batching_job(
    job: Job,
    parse: Callable[[int, bytes | bytearray], Any],
    pipeline: Pipeline,
    *,
    fresh: bool,
    view: ProgressView | None,
    manifest: dict[str, Any] | None,
    when_complete: Callable[[ResultWriter], None] | None = None,
) -> JobReport:
    """Run `pipeline` over the job's input (lines read by `parse`, those an earlier run
    finished left out) into its output; `when_complete` runs, still under the output's
    lock, once a run ends neither interrupted nor stopped by the provider."""
    manifest = manifest or {}
    await anyio.to_thread.run_sync(check_paths, job)
    stats = RunStats()
    # Load the tokenizer off the event loop: its first load may wait on the network.
    await anyio.to_thread.run_sync(estimate_text_tokens, "")
    async with AsyncExitStack() as stack:
        reuse = await open_reuse(job.cache, stack)
        out = await open_output(job, stack, fresh=fresh, manifest=manifest)
        if out.state is not None and job.limits.max_cost is not None:
            # The cap is the output's budget: what earlier runs spent counts.
            stats.earlier_cost_usd = out.state.cost_usd
        await count_input(job, stats)
        reader = stack.enter_context(InputReader(job.input, parse=parse))
        source = skip_done(reader, out.state, stats, job.shard)
        outcome = await watched(
            view,
            stats.snapshot,
            lambda: pipeline(source, out.writer.write_many, stats, stack, reuse),
        )
        complete = not (outcome.interrupted or outcome.fatal or outcome.cost_cap_reached)
        if when_complete is not None and complete and out.path is not None:
            when_complete(out.writer)
        # The cache entries still queued are stored before the summary counts them.
        await reuse.finish()
        report = JobReport(
            outcome=outcome,
            output=job.output,
            moved_aside=out.moved,
            resumed_ok=len(out.state.ok) if out.state else 0,
            repaired_bytes=out.state.repaired_bytes if out.state else 0,
            cache=reuse.summary(),
        )
        out.finish(manifest, report.to_dict())
    return report
