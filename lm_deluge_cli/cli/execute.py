"""What `run` and the toolkit commands do once their flags are read: load the job, run it
under Ctrl-C/SIGTERM handling, print the summary (or --json), the resume hint, and exit."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

import anyio
import orjson
import typer
from rich.console import Console

from lm_deluge_cli.cli.gc_tuning import fewer_collections
from lm_deluge_cli.cli.stop_signals import STOP_SIGNALS, exit_on_signal, restore
from lm_deluge_cli.config import STDIO, Job
from lm_deluge_cli.engine import learning
from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.engine.task import Task
from lm_deluge_cli.errors import EXIT_INTERRUPTED, OutputWriteError
from lm_deluge_cli.progress import ProgressView, format_cost, format_duration, make_view
from lm_deluge_cli.runner import JobReport, run_job
from lm_deluge_cli.transport.event_loop import backend_options

__all__ = [
    "Runner",
    "ToolSummary",
    "configure_logging",
    "execute",
    "stdout_for",
]

# A command's own way to run a job (embed, rerank): called with fresh, view, stop, manifest.
Runner = Callable[..., Awaitable[JobReport]]


@dataclass(frozen=True, slots=True)
class ToolSummary:
    """What a tool adds to the end of a run: its name (in the manifest), its own summary
    lines, and its own fields in the --json summary."""

    name: str
    lines: Callable[[RunStatistics], list[str]] = lambda _: []
    fields: Callable[[RunStatistics], dict[str, object]] = lambda _: {}


def stdout_for(what: str, instead: str) -> TextIO:
    """stdout, to print `what` on; refused when the shell closed it (``>&-``), saying to
    do `instead`. Asked before anything runs, so a closed stdout costs no request."""
    if sys.stdout is None:
        raise OutputWriteError(f"cannot print {what}: stdout is closed; {instead}")
    return sys.stdout


def configure_logging(*, verbose: bool, quiet: bool) -> None:
    """--verbose logs retries; what "auto" limits became is one line on stderr anyway."""
    if verbose:
        logging.getLogger("lm_deluge_cli").setLevel(logging.DEBUG)
    learned_log = logging.getLogger(learning.__name__)
    if not quiet and learned_log.getEffectiveLevel() > logging.INFO:
        learned_log.setLevel(logging.INFO)


def execute(
    job: Job,
    *,
    fresh: bool,
    quiet: bool,
    json_summary: bool,
    task: Task | None = None,
    tool: ToolSummary | None = None,
    runner: Runner | None = None,
) -> NoReturn:
    """Run `job` (through `task`, for a tool; with `runner` instead of `run_job`, for the
    batching commands) and exit with the run's exit code."""
    # soft_wrap: long paths and commands stay on one line (logs are grepped, commands pasted).
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if json_summary and job.output != STDIO:
        stdout_for("the --json summary", "drop --json, or leave stdout open")
    view = make_view(console, quiet=quiet)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = _manifest(job, started, tool.name if tool else None)
    # Until the run listens for them, a signal ends the process with 130 (nothing is
    # written before then), not with the default's silent death by SIGTERM (143).
    previous = exit_on_signal(EXIT_INTERRUPTED)
    try:
        with fewer_collections():
            report = anyio.run(
                _run_with_signals,
                job,
                fresh,
                view,
                console,
                manifest,
                task,
                runner,
                backend_options=backend_options(),
            )
        _finish(job, report, console, quiet=quiet, json_summary=json_summary, tool=tool)
    except BaseExceptionGroup as group:
        # A signal's SystemExit raised inside the run's task groups comes out wrapped.
        found: BaseException | None = group.subgroup(SystemExit)
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        if found is None:
            raise
        raise found from None
    finally:
        restore(previous)


def _finish(
    job: Job,
    report: JobReport | None,
    console: Console,
    *,
    quiet: bool,
    json_summary: bool,
    tool: ToolSummary | None,
) -> NoReturn:
    """Print the summary and the resume hint, and exit with the run's code."""
    if report is None:
        # A second Ctrl-C: stopped at once; whatever was written stays, the rest resumes.
        console.print(f"interrupted; resume with: {_resume_command()}", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    statistics = report.outcome.statistics
    if json_summary:
        summary = report.to_dict()
        if tool is not None:
            summary.update(tool=tool.name, **tool.fields(statistics))
        (sys.stderr if job.output == STDIO else sys.stdout).write(
            orjson.dumps(summary).decode() + "\n"
        )
    elif not quiet:
        _print_summary(console, report, tool.lines(statistics) if tool else [])
    if report.outcome.cost_cap_reached:
        console.print(
            f"resume with a higher --max-cost (it overrides the job's max_cost): "
            f"{_resume_command()}",
            markup=False,
        )
    elif report.outcome.interrupted or report.outcome.fatal:
        console.print(f"resume with: {_resume_command()}", markup=False)
    raise typer.Exit(report.exit_code)


async def _run_with_signals(
    job: Job,
    fresh: bool,
    view: ProgressView | None,
    console: Console,
    manifest: dict[str, object],
    task: Task | None,
    runner: Runner | None = None,
) -> JobReport | None:
    """First Ctrl-C/SIGTERM: stop dispatching and let in-flight requests finish; second: now."""
    stop = anyio.Event()
    report: JobReport | None = None
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            try:
                with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                    async for _ in signals:
                        if stop.is_set():
                            tg.cancel_scope.cancel()
                            return
                        console.print(
                            "stopping: finishing requests in flight (again to stop at once)",
                            markup=False,
                        )
                        stop.set()
            finally:
                # Closing the receiver gives SIGTERM back its default (death, 143). The run
                # is over and its manifest written: a signal now ends the process with the
                # code the manifest records, the summary unprinted.
                exit_on_signal(report.exit_code if report is not None else EXIT_INTERRUPTED)

        tg.start_soon(watch_signals)
        if runner is None:
            report = await run_job(
                job, fresh=fresh, view=view, stop=stop, manifest=manifest, task=task
            )
        else:
            report = await runner(job, fresh=fresh, view=view, stop=stop, manifest=manifest)
        tg.cancel_scope.cancel()
    return report


def _by_type(errors: Mapping[str, int]) -> str:
    """``(3 rate_limit, 1 invalid_input)``: the failures by type, most frequent first."""
    if not errors:
        return ""
    ordered = sorted(errors.items(), key=lambda item: (-item[1], item[0]))
    return " (" + ", ".join(f"{count} {kind}" for kind, count in ordered) + ")"


def _already_done(s: RunStatistics) -> str:
    """``, 5 already done earlier (2 of them failed)``: what the exit code also counts."""
    if not s.skipped:
        return ""
    failed = f" ({s.skipped_failed} of them failed)" if s.skipped_failed else ""
    return f", {s.skipped} already done earlier{failed}"


def _cache_where(report: JobReport) -> str:
    cache = report.cache
    if cache is None:
        return " (cache off)"
    if not cache["available"]:
        return f" (cache {cache['backend']} at {cache['location']} unavailable)"
    return f" (cache: {cache['backend']} at {cache['location']})"


def _prompt_cache(s: RunStatistics) -> str:
    if not s.cache_read_tokens and not s.cache_write_tokens:
        return ""
    return (
        f" (prompt cache: {s.cache_read_tokens:,} of the input tokens read, "
        f"{s.cache_write_tokens:,} written)"
    )


def _print_summary(console: Console, report: JobReport, tool_lines: list[str]) -> None:
    s = report.outcome.statistics
    lines = [
        f"done: {s.ok} ok, {s.failed} failed" + _by_type(s.errors_by_type) + _already_done(s),
        *tool_lines,
        f"requests: {s.requests} ({s.retries} retries, {s.rate_limited} answered 429)",
        f"reused: {s.cached} from the cache, {s.deduplicated} shared with identical lines"
        + _cache_where(report),
        f"tokens: {s.input_tokens:,} in, {s.output_tokens:,} out; cost {format_cost(s)}"
        + _prompt_cache(s),
        f"wall time: {format_duration(s.elapsed_s)} ({s.elapsed_s:.1f}s)",
    ]
    if s.requests:
        bound = report.bound
        lines.append(bound.describe() if bound is not None else "held back by: nothing")
    for model, learned in s.learned_limits.items():
        lines.append(f"auto limits for {model} ({learned.source}): {learned.describe()}")
    if report.moved_aside:
        lines.append(f"previous output moved to {report.moved_aside}")
    if report.outcome.fatal:
        lines.append(f"stopped: {report.outcome.fatal}")
    elif report.outcome.cost_cap_reached and s.max_cost_usd is not None:
        left = f"; {s.remaining} left to do" if s.remaining else ""
        lines.append(
            f"stopped by the spending cap of ${s.max_cost_usd:.4f}: "
            f"${s.cost_toward_cap_usd:.4f} spent on this output (earlier runs included), and "
            f"another request could take it past the cap{left}"
        )
    elif report.outcome.interrupted and s.remaining:
        lines.append(f"interrupted: {s.remaining} left to do")
    if report.output != STDIO:
        lines.append(f"results: {report.output}")
    for line in lines:
        console.print(line, markup=False)


def _manifest(job: Job, started: str, tool: str | None) -> dict[str, object]:
    manifest: dict[str, object] = {
        "input": job.input if job.input == STDIO else str(Path(job.input).resolve()),
        "job_file": str(job.job_file.resolve()) if job.job_file else None,
        "models": [m.name for m in job.models],
        "started_at": started,
    }
    if tool is not None:
        manifest["tool"] = tool
    return manifest


def _resume_command() -> str:
    args = [a for a in sys.argv[1:] if a != "--fresh"]
    return shlex.join(["lm-deluge", *args])
