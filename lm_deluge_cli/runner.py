"""Run a `Job`: resume from the output, stream the input through the engine, append results."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from lm_deluge_cli.config import STDIO, CacheConfig, Job
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.agent_loop import run_agent_loops
from lm_deluge_cli.engine.bound_by import Bound, bound_by
from lm_deluge_cli.engine.chat_stages import run_pipeline
from lm_deluge_cli.engine.pipeline import RunOutcome
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.reuse import Reuse, open_reuse
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.task import Answered, LineParser, Task
from lm_deluge_cli.errors import (
    EXIT_FATAL_PROVIDER,
    EXIT_INTERRUPTED,
    EXIT_LINES_LEFT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    UsageError,
)
from lm_deluge_cli.io.manifest import write_manifest
from lm_deluge_cli.io.overlap import first_output_id, output_overlap
from lm_deluge_cli.io.reader import BadLine, InputReader, count_lines
from lm_deluge_cli.io.resume import ResumeState, scan_output
from lm_deluge_cli.io.shard import Shard
from lm_deluge_cli.io.source import check_input, is_stream
from lm_deluge_cli.io.writer import ResultWriter
from lm_deluge_cli.progress import ProgressView, make_view, watched
from lm_deluge_cli.providers.base_url import is_mock_url
from lm_deluge_cli.results import Result
from lm_deluge_cli.tokens import estimate_text_tokens
from lm_deluge_cli.tool_use.modules import load_tools
from lm_deluge_cli.tool_use.tool import Tool, tool_definitions
from lm_deluge_cli.transport import transport_class
from lm_deluge_cli.types import Prompt, RequestDefaults

__all__ = [
    "Build",
    "Engine",
    "JobReport",
    "OpenOutput",
    "check_paths",
    "count_input",
    "open_output",
    "run_command",
    "run_job",
    "skip_done",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobReport:
    """The end of a run, for the summary and the exit code."""

    outcome: RunOutcome
    output: str
    moved_aside: Path | None
    resumed_ok: int
    repaired_bytes: int
    # The result cache's backend, location and counters (None: no cache).
    cache: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        """The summary as plain data (for --json and the manifest)."""
        s = self.outcome.statistics
        bound = self.bound
        return {
            "output": self.output,
            "exit_code": self.exit_code,
            "ok": s.ok,
            "failed": s.failed,
            "errors_by_type": dict(sorted(s.errors_by_type.items())),
            "skipped_already_done": s.skipped,
            "skipped_failed": s.skipped_failed,
            "remaining": s.remaining,
            "requests": s.requests,
            "retries": s.retries,
            "rate_limited": s.rate_limited,
            "cached": s.cached,
            "deduplicated": s.deduplicated,
            "passed_through": s.passed_through,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "cache_read_tokens": s.cache_read_tokens,
            "cache_write_tokens": s.cache_write_tokens,
            "cost_usd": round(s.cost_usd, 6) if s.cost_known else None,
            "wall_time_s": round(s.elapsed_s, 3),
            "interrupted": self.outcome.interrupted,
            "fatal": str(self.outcome.fatal) if self.outcome.fatal else None,
            "moved_aside": str(self.moved_aside) if self.moved_aside else None,
            "cache": self.cache,
            "learned_limits": {
                model: learned.to_dict() for model, learned in s.learned_limits.items()
            },
            "max_cost_usd": s.max_cost_usd,
            "cost_cap_reached": self.outcome.cost_cap_reached,
            # Earlier runs on the same output count toward the cap.
            "cost_toward_cap_usd": (
                round(s.cost_toward_cap_usd, 6) if s.max_cost_usd is not None else None
            ),
            "bound_by": bound.to_dict() if bound is not None else None,
        }

    @property
    def bound(self) -> Bound | None:
        """The limit that held the run back (None: none did, or nothing was sent)."""
        return bound_by(self.outcome.statistics)

    @property
    def exit_code(self) -> int:
        """What the output holds at the end: 0 only when every line's latest record is ok
        (earlier runs' records included); a stop with lines left is never 0."""
        if self.outcome.fatal is not None:
            return EXIT_FATAL_PROVIDER
        if self.outcome.interrupted:
            return EXIT_INTERRUPTED
        if self.outcome.cost_cap_reached:
            # The cap refused a request: its line has no record yet.
            return EXIT_LINES_LEFT
        s = self.outcome.statistics
        return EXIT_SOME_FAILED if s.failed or s.skipped_failed else EXIT_OK


@dataclass(frozen=True, slots=True)
class Engine:
    """A command's engine, built before the output is touched: its sender (whose spending
    cap counts what earlier runs on the output spent) and how it runs the lines left."""

    sender: Sender[Any]
    # (the lines to run, where their records go, those that came together in one list) →
    # how the run ended
    run: Callable[[AsyncIterator[Any], Callable[[list[Any]], None]], Awaitable[RunOutcome]]


# (statistics, the run's exit stack, the cache) → the command's engine
Build = Callable[[RunStats, AsyncExitStack, Reuse], Awaitable[Engine]]


async def run_command(
    job: Job,
    build: Build,
    *,
    parse: LineParser | None = None,
    fresh: bool = False,
    view: ProgressView | None = None,
    manifest: dict[str, Any] | None = None,
    when_complete: Callable[[ResultWriter], None] | None = None,
) -> JobReport:
    """The frame every command runs in: check the paths, open the cache, `build` the
    engine, lock the output and read what earlier runs finished, then run the input's
    lines (read by `parse`; None: prompt lines) into the output and record the summary
    beside it. `when_complete` runs, still under the output's lock, once a run ends
    neither interrupted nor stopped by the provider or the cap."""
    manifest = manifest or {}
    await anyio.to_thread.run_sync(check_paths, job)
    stats = RunStats()
    # Load the tokenizer off the event loop: its first load may wait on the network.
    await anyio.to_thread.run_sync(estimate_text_tokens, "")
    async with AsyncExitStack() as stack:
        reuse = await open_reuse(job.cache, stack)
        # Built first: a bad model entry fails before the output is touched.
        engine = await build(stats, stack, reuse)
        out = await open_output(job, stack, fresh=fresh, manifest=manifest)
        budget = engine.sender.budget
        if out.state is not None and budget is not None:
            # The cap is the output's budget: what earlier runs spent counts.
            budget.carry_over(out.state.cost_usd)
            stats.earlier_cost_usd = out.state.cost_usd
        await count_input(job, stats)
        reader: InputReader[Any] = (
            InputReader(job.input, files_root=job.files_root)
            if parse is None
            else InputReader(job.input, parse=parse)
        )
        source = skip_done(stack.enter_context(reader), out.state, stats, job.shard)
        outcome = await watched(
            view, stats.snapshot, lambda: engine.run(source, out.writer.write_many)
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


async def run_job(
    job: Job,
    *,
    fresh: bool = False,
    view: ProgressView | None = None,
    stop: anyio.Event | None = None,
    manifest: dict[str, Any] | None = None,
    task: Task | None = None,
) -> JobReport:
    """Run `job`'s chat lines to completion (or until `stop`); every check that can fail
    runs first.

    `manifest` is recorded beside the output (see io/manifest.py) once the lock is held.
    With a `task` (a tool: extract, translate, score), input lines are read and turned into
    prompts by the task, and each record gets the task's fields before it is written.
    """
    endpoints = resolve_endpoints(job.models, registry=job.model_registry())
    if any(not is_mock_url(endpoint.base_url) for endpoint in endpoints):
        # The HTTP library loads now, off the event loop and before the run's clock starts,
        # not while the first requests wait for it (aiohttp: 0.2-0.4 s on a loaded machine).
        await anyio.to_thread.run_sync(transport_class)
    tools: list[Tool] = []
    defaults = job.requests
    if job.tools_module is not None:
        if task is not None:
            raise UsageError("tools_module runs agent loops, which the toolkit commands do not")
        tools = load_tools(job.tools_module)
        defaults = with_tools(defaults, tools)
    parse: LineParser | None = None
    if task is not None:
        base_dir = None if job.input == STDIO else Path(job.input).resolve().parent
        files_root = None if job.files_root is None else Path(job.files_root)
        parse = task.parser(base_dir, files_root)

    async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
        requester = await build_requester(
            job.models,
            endpoints,
            job.limits,
            job.sampling,
            retry_other_model=job.retry_other_model,
            stats=stats,
            stack=stack,
            reuse=reuse,
            shared_limiter=job.limits.limiter,
            shared_limiter_key=job.limits.limiter_key,
            defaults=defaults,
            prompt_cache=job.prompt_cache,
            dedupe=job.dedupe,
            warmup_s=job.prompt_cache_warmup_s,
        )

        agent = (tools, job.max_rounds) if job.tools_module is not None else None
        finish = task.finish if task is not None else None
        engine = chat_engine(requester, stats, finish=finish, agent=agent, stop=stop)
        if task is None:
            return engine
        # The task makes each item read into its prompt (or its record).
        return Engine(engine.sender, lambda items, sink: engine.run(_prepared(items, task), sink))

    return await run_command(job, build, parse=parse, fresh=fresh, view=view, manifest=manifest)


def chat_engine(
    requester: Requester,
    stats: RunStats,
    *,
    finish: Callable[[Result], Result] | None = None,
    agent: tuple[Sequence[Tool], int] | None = None,
    stop: anyio.Event | None = None,
) -> Engine:
    """Chat lines through `requester` as a command's engine: `finish` (a tool's)
    completes each record; with `agent` (tools and the most rounds) each line is a
    conversation run as an agent loop (engine/agent_loop.py)."""

    async def run(items: AsyncIterator[Any], sink: Callable[[list[Result]], None]) -> RunOutcome:
        if agent is not None:
            tools, rounds = agent
            return await run_agent_loops(
                items,
                lambda record: sink([record]),
                requester,
                stats,
                tools,
                max_rounds=rounds,
                stop=stop,
            )
        return await run_pipeline(items, sink, requester, stats, stop=stop, finish=finish)

    return Engine(requester.sender, run)


async def run_in_memory(
    cache: CacheConfig,
    items: AsyncIterator[Any],
    count: int,
    build: Build,
    *,
    show_progress: bool = False,
) -> list[Any | None]:
    """The Python API's frame, as `run_command` is the CLI's: `count` items (lines 1 to
    `count`) through the engine `build` makes, with the cache `cache` names; each line's
    record by position, None if it never ran."""
    stats = RunStats(total=count, total_is_estimate=False)
    records: list[Any | None] = [None] * count

    def sink(batch: list[Any]) -> None:
        for record in batch:
            index = (record.line if isinstance(record, Result) else record["line"]) - 1
            if 0 <= index < count:
                records[index] = record

    async with AsyncExitStack() as stack:
        reuse = await open_reuse(cache, stack)
        engine = await build(stats, stack, reuse)
        view = make_view(Console(stderr=True), quiet=not show_progress)
        await watched(view, stats.snapshot, lambda: engine.run(items, sink))
    return records


def check_paths(job: Job) -> None:
    """Refuse an unreadable input (a closed stdin, a UTF-16 file) and an output that is
    the input, before anything runs."""
    check_input(job.input)
    if job.input == STDIO:
        return
    if job.output != STDIO and _same_file(Path(job.input), Path(job.output)):
        raise UsageError(
            f"input and output are the same file ({job.output}): results would be "
            "appended to the prompts; give another -o"
        )


@dataclass(slots=True)
class OpenOutput:
    """The output, locked, with what earlier runs left in it (None for stdout)."""

    writer: ResultWriter
    path: Path | None
    state: ResumeState | None
    moved: Path | None

    def finish(self, manifest: dict[str, Any], summary: dict[str, object]) -> None:
        """Record the run's summary beside the output (call while the lock is held)."""
        if self.path is None:
            return
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        write_manifest(self.path, {**manifest, "finished_at": finished, "last_run": summary})


async def open_output(
    job: Job, stack: AsyncExitStack, *, fresh: bool, manifest: dict[str, Any]
) -> OpenOutput:
    """Lock the output (released when `stack` closes), move it aside for `fresh`, read what
    earlier runs finished, refuse another input's output, and record the manifest."""
    if job.output == STDIO:
        return OpenOutput(stack.enter_context(ResultWriter(STDIO)), None, None, None)
    output = Path(job.output)
    # Take the lock before touching an existing file: another run may own it.
    writer = stack.enter_context(ResultWriter(output, fsync=job.fsync))
    moved: Path | None = None
    if fresh:
        # Under the same lock throughout: no other run can start in between.
        moved = writer.start_over()
    state = scan_output(output)
    # A stream can be read only once, by the run itself: its lines skip the done ids as
    # they go by, unchecked against the output beforehand.
    if not is_stream(job.input):
        # Before the manifest is rewritten: a refused run leaves everything as it was.
        await _check_overlap(Path(job.input), output, state)
    write_manifest(output, manifest)
    if state.repaired_bytes:
        log.warning("repaired a torn last line in %s (%d bytes)", output, state.repaired_bytes)
    return OpenOutput(writer, output, state, moved)


async def count_input(job: Job, stats: RunStats) -> None:
    """The input's line count as the run's first estimate of its total (a shard's share);
    a stream's is not counted (that would read it), and the progress goes without one."""
    lines = await anyio.to_thread.run_sync(count_lines, job.input)
    # A shard's share is known once the input is read; until then, estimated.
    if lines is not None and job.shard is not None:
        lines = -(-lines // job.shard.count)
    stats.total = lines


async def _check_overlap(input_path: Path, output: Path, state: ResumeState) -> None:
    """Refuse an output none of whose ids are in the input; warn when some are not."""
    if not state.ok and not state.failed:
        return
    overlap = await anyio.to_thread.run_sync(output_overlap, input_path, state)
    if not overlap.foreign:
        return
    if not overlap.in_input:
        example = await anyio.to_thread.run_sync(first_output_id, output)
        raise UsageError(
            f"{output} holds results for {overlap.output_ids} ids and none of them is in "
            f"{input_path} (e.g. id {example!r}): it looks like the output of another input. "
            "Give another -o, or --fresh to move it aside and start over"
        )
    log.warning(
        "%d ids in %s are not in %s (lines removed from the input, or results of another "
        "input): their records stay in the file, and export leaves them out",
        overlap.foreign,
        output,
        input_path,
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def with_tools(defaults: RequestDefaults, tools: Sequence[Tool]) -> RequestDefaults:
    """The job's request defaults with a tools module's tools after its [[tools]]."""
    definitions = (*defaults.tools, *tool_definitions(tools))
    names = [d["function"]["name"] for d in definitions]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"the tool {twice[0]!r} is both in [[tools]] and in tools_module")
    return dataclasses.replace(defaults, tools=definitions)


async def _prepared(
    items: AsyncIterator[Any], task: Task
) -> AsyncIterator[Prompt | BadLine | Answered]:
    async for item in items:
        yield item if isinstance(item, BadLine) else task.prepare(item)


async def skip_done(
    reader: InputReader[Any], state: ResumeState | None, stats: RunStats, shard: Shard | None = None
) -> AsyncIterator[Any]:
    """The reader's items (this shard's only) less what an earlier run already finished."""
    # What the output holds, if anything: a new output has nothing to look up for each line.
    ok = state.ok if state is not None and len(state.ok) else None
    bad_lines = state.bad_lines if state is not None and len(state.bad_lines) else None
    owned = 0
    async for item in reader:
        if shard is not None and not shard.owns(item):
            continue
        owned += 1
        if isinstance(item, BadLine):
            if bad_lines is not None and item.line in bad_lines:
                stats.skipped += 1
                stats.skipped_failed += 1
                continue
        elif ok is not None and item.key in ok:
            stats.skipped += 1
            continue
        yield item
    # Once the input is read the true count is known (blank lines excluded).
    stats.total = owned
    stats.total_is_estimate = False
