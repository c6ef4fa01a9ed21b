"""`lm-deluge run`: a job file and/or flags → a results file."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import anyio
import orjson
import typer
from rich.console import Console

from lm_deluge_cli.config import STDIO, Job, JobOverrides, load_job
from lm_deluge_cli.engine import learning
from lm_deluge_cli.engine.plan import DryRunReport, plan_job
from lm_deluge_cli.errors import EXIT_INTERRUPTED, EXIT_OK
from lm_deluge_cli.progress import ProgressView, format_cost, format_duration, make_view
from lm_deluge_cli.runner import JobReport, run_job

__all__ = ["run"]

log = logging.getLogger(__name__)

_LIMITS = "Limits"
_SAMPLING = "Sampling"
_CACHE = "Cache"


def run(
    job_file: Annotated[
        Path | None, typer.Argument(help="Job file (TOML). Flags override its fields.")
    ] = None,
    input: Annotated[
        str | None, typer.Option("-i", "--input", help="Input JSONL, or - for stdin.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Results JSONL, or - for stdout.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("-m", "--model", help="NAME or NAME=WEIGHT; repeat to spray across models."),
    ] = None,
    max_requests_per_minute: Annotated[
        str | None,
        typer.Option(
            envvar="LM_DELUGE_MAX_REQUESTS_PER_MINUTE",
            rich_help_panel=_LIMITS,
            metavar="N|auto",
            help="Requests per minute for the whole run (0 = unlimited; auto = learn each "
            "model's limit from its provider's rate-limit headers).",
        ),
    ] = None,
    max_tokens_per_minute: Annotated[
        str | None,
        typer.Option(
            envvar="LM_DELUGE_MAX_TOKENS_PER_MINUTE",
            rich_help_panel=_LIMITS,
            metavar="N|auto",
            help="Tokens per minute for the whole run (0 = unlimited; auto as above).",
        ),
    ] = None,
    max_concurrent_requests: Annotated[
        int | None,
        typer.Option(envvar="LM_DELUGE_MAX_CONCURRENT_REQUESTS", rich_help_panel=_LIMITS),
    ] = None,
    max_attempts: Annotated[int | None, typer.Option(rich_help_panel=_LIMITS)] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            rich_help_panel=_LIMITS,
            metavar="USD",
            help="Spending cap in US dollars: send no request that could take what the output "
            "has cost (earlier runs included) past it; rerun with a higher cap to go on. "
            "Every model needs a known price.",
        ),
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option(rich_help_panel=_LIMITS, help="Seconds per request.")
    ] = None,
    limiter: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=_LIMITS,
            metavar="REDIS_URL",
            help="Share the run's requests/min and tokens/min with every process using the "
            "same Redis URL and --limiter-key (give them all the same limits).",
        ),
    ] = None,
    limiter_key: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=_LIMITS, help='Name of the shared budget in Redis (default "default").'
        ),
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option(rich_help_panel=_SAMPLING)] = None,
    temperature: Annotated[float | None, typer.Option(rich_help_panel=_SAMPLING)] = None,
    top_p: Annotated[float | None, typer.Option(rich_help_panel=_SAMPLING)] = None,
    json_mode: Annotated[
        bool | None,
        typer.Option(
            "--json-mode/--no-json-mode", rich_help_panel=_SAMPLING, help="Ask for a JSON object."
        ),
    ] = None,
    reasoning_effort: Annotated[
        str | None,
        typer.Option(rich_help_panel=_SAMPLING, help="minimal | low | medium | high"),
    ] = None,
    logprobs: Annotated[
        bool | None, typer.Option("--logprobs/--no-logprobs", rich_help_panel=_SAMPLING)
    ] = None,
    top_logprobs: Annotated[int | None, typer.Option(rich_help_panel=_SAMPLING)] = None,
    retry_other_model: Annotated[
        bool | None,
        typer.Option(
            "--retry-other-model/--no-retry-other-model",
            help="Retry a failed request on another model.",
        ),
    ] = None,
    fsync: Annotated[
        str | None, typer.Option(help="none | end (default) | always: when results are fsynced.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Start over: move the old output aside (never deleted).")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Run only part K (from 0) of N of the input, split by id; N processes "
            "with 0/N … N-1/N together run every line once.",
        ),
    ] = None,
    files_root: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="Read the images and files that input lines name only from under DIR: "
            "paths, file: URLs and symlinks leading outside it become error records. "
            "Default: no restriction.",
        ),
    ] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=_CACHE,
            help="Result cache: a directory (diskcache), a .sqlite file, redis://HOST:PORT/DB, "
            "or memory:. Default: $LM_DELUGE_CACHE_DIR, else ~/.cache/lm-deluge.",
        ),
    ] = None,
    no_cache: Annotated[
        bool | None,
        typer.Option(
            "--no-cache", rich_help_panel=_CACHE, help="Neither read nor write the cache."
        ),
    ] = None,
    cache_read_only: Annotated[
        bool | None,
        typer.Option("--cache-read-only", rich_help_panel=_CACHE, help="Use hits; store nothing."),
    ] = None,
    refresh_cache: Annotated[
        bool | None,
        typer.Option(
            "--refresh-cache",
            rich_help_panel=_CACHE,
            help="Ignore hits: send every request and store the new answers.",
        ),
    ] = None,
    cache_ttl: Annotated[
        float | None,
        typer.Option(rich_help_panel=_CACHE, help="Seconds a stored answer stays valid."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log retries.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Send nothing: read the input and print, per model, the requests, estimated "
            "input tokens, max output tokens and estimated cost. Needs no API keys and no -o.",
        ),
    ] = False,
) -> None:
    """Run a batch job: every input line ends as one record in the output; rerun to resume."""
    if verbose:
        logging.getLogger("lm_deluge_cli").setLevel(logging.DEBUG)
    learned_log = logging.getLogger(learning.__name__)
    if not quiet and learned_log.getEffectiveLevel() > logging.INFO:
        # What "auto" limits became is worth one line on stderr without --verbose.
        learned_log.setLevel(logging.INFO)
    job = load_job(
        job_file,
        JobOverrides(
            input=input,
            output=output,
            models=model or (),
            max_requests_per_minute=max_requests_per_minute,
            max_tokens_per_minute=max_tokens_per_minute,
            max_concurrent_requests=max_concurrent_requests,
            max_attempts=max_attempts,
            request_timeout=request_timeout,
            max_cost=max_cost,
            limiter=limiter,
            limiter_key=limiter_key,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            json_mode=json_mode,
            reasoning_effort=reasoning_effort,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            retry_other_model=retry_other_model,
            fsync=fsync,
            shard=shard,
            files_root=files_root,
            cache=cache,
            no_cache=no_cache,
            cache_read_only=cache_read_only,
            refresh_cache=refresh_cache,
            cache_ttl=cache_ttl,
        ),
        need_output=not dry_run,
    )
    if dry_run:
        plan = plan_job(job, skip_done=not fresh)
        if json_summary:
            sys.stdout.write(orjson.dumps(plan.to_dict()).decode() + "\n")
        else:
            _print_dry_run(plan)
        raise typer.Exit(EXIT_OK)
    # soft_wrap: long paths and commands stay on one line (logs are grepped, commands pasted).
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    view = make_view(console, quiet=quiet)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    report = anyio.run(_run_with_signals, job, fresh, view, console, _manifest(job, started))
    if report is None:
        # A second Ctrl-C: stopped at once; whatever was written stays, the rest resumes.
        console.print(f"interrupted; resume with: {_resume_command()}", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if json_summary:
        stream = sys.stderr if job.output == STDIO else sys.stdout
        stream.write(orjson.dumps(report.to_dict()).decode() + "\n")
    elif not quiet:
        _print_summary(console, report)
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
) -> JobReport | None:
    """First Ctrl-C/SIGTERM: stop dispatching and let in-flight requests finish; second: now."""
    stop = anyio.Event()
    report: JobReport | None = None
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if stop.is_set():
                        tg.cancel_scope.cancel()
                        return
                    console.print(
                        "stopping: finishing requests in flight (again to stop at once)",
                        markup=False,
                    )
                    stop.set()

        tg.start_soon(watch_signals)
        report = await run_job(job, fresh=fresh, view=view, stop=stop, manifest=manifest)
        tg.cancel_scope.cancel()
    return report


def _by_type(errors: Mapping[str, int]) -> str:
    """``(3 rate_limit, 1 invalid_input)``: the failures by type, most frequent first."""
    if not errors:
        return ""
    ordered = sorted(errors.items(), key=lambda item: (-item[1], item[0]))
    return " (" + ", ".join(f"{count} {kind}" for kind, count in ordered) + ")"


def _cache_where(report: JobReport) -> str:
    cache = report.cache
    if cache is None:
        return " (cache off)"
    if not cache["available"]:
        return f" (cache {cache['backend']} at {cache['location']} unavailable)"
    return f" (cache: {cache['backend']} at {cache['location']})"


def _print_summary(console: Console, report: JobReport) -> None:
    s = report.outcome.statistics
    lines = [
        f"done: {s.ok} ok, {s.failed} failed"
        + _by_type(s.errors_by_type)
        + (f", {s.skipped} already done earlier" if s.skipped else ""),
        f"requests: {s.requests} ({s.retries} retries, {s.rate_limited} answered 429)",
        f"reused: {s.cached} from the cache, {s.deduplicated} shared with identical lines"
        + _cache_where(report),
        f"tokens: {s.input_tokens:,} in, {s.output_tokens:,} out; cost {format_cost(s)}",
        f"wall time: {format_duration(s.elapsed_s)} ({s.elapsed_s:.1f}s)",
    ]
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


def _print_dry_run(report: DryRunReport) -> None:
    """The dry run as a small table on stdout: it is the command's result."""

    def cost(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.4f}"

    rows = [("model", "requests", "input tokens", "max output tokens", "est. cost")]
    rows += [
        (
            m.name,
            f"{m.requests:,}",
            f"{m.input_tokens:,}",
            f"{m.max_output_tokens:,}",
            cost(m.cost_usd),
        )
        for m in report.models
    ]
    total_cost = cost(report.cost_usd) + ("+?" if report.unpriced else "")
    rows.append(
        (
            "total",
            f"{report.requests:,}",
            f"{report.input_tokens:,}",
            f"{report.max_output_tokens:,}",
            total_cost,
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"dry run: nothing was sent; {report.lines:,} input lines read"]
    for row in rows:
        numbers = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        cells = [row[0].ljust(widths[0]), *numbers]
        lines.append("  ".join(cells).rstrip())
    lines.append("est. cost assumes every reply uses all of max_new_tokens: an upper bound")
    if report.unpriced:
        lines.append(f"no price known for {', '.join(report.unpriced)}: not in the total")
    if report.already_done:
        lines.append(f"{report.already_done:,} prompts already done in the output are not counted")
    if report.identical:
        lines.append(
            f"{report.identical:,} lines repeat an earlier line's request and would share it"
        )
    lines.append("answers already in the result cache would cost nothing (not checked here)")
    if report.max_cost_usd is not None:
        verdict = "within" if report.cost_usd <= report.max_cost_usd else "above"
        lines.append(f"--max-cost ${report.max_cost_usd:.4f}: the estimate is {verdict} the cap")
    if report.bad_lines:
        lines.append(f"{report.bad_lines:,} bad lines (each would become an error record):")
        lines += [f"  {reason}" for reason in report.bad_line_examples]
        if report.bad_lines > len(report.bad_line_examples):
            lines.append(f"  … and {report.bad_lines - len(report.bad_line_examples):,} more")
    sys.stdout.write("\n".join(lines) + "\n")


def _manifest(job: Job, started: str) -> dict[str, object]:
    return {
        "input": job.input if job.input == STDIO else str(Path(job.input).resolve()),
        "job_file": str(job.job_file.resolve()) if job.job_file else None,
        "models": [m.name for m in job.models],
        "started_at": started,
    }


def _resume_command() -> str:
    args = [a for a in sys.argv[1:] if a != "--fresh"]
    return shlex.join(["lm-deluge", *args])
