"""`lm-deluge run`: a job file and/or flags → a results file."""

from __future__ import annotations

from typing import TextIO

import orjson
import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import configure_logging, execute, stdout_for
from lm_deluge_cli.config import load_job
from lm_deluge_cli.engine.plan import DryRunReport, plan_job
from lm_deluge_cli.errors import EXIT_OK

__all__ = ["run"]


def run(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    input: options.Input = None,
    output: options.Output = None,
    model: options.Model = None,
    max_requests_per_minute: options.MaxRequestsPerMinute = None,
    max_tokens_per_minute: options.MaxTokensPerMinute = None,
    max_concurrent_requests: options.MaxConcurrentRequests = None,
    max_attempts: options.MaxAttempts = None,
    max_cost: options.MaxCost = None,
    request_timeout: options.RequestTimeout = None,
    limiter: options.Limiter = None,
    limiter_key: options.LimiterKey = None,
    max_new_tokens: options.MaxNewTokens = None,
    temperature: options.Temperature = None,
    top_p: options.TopP = None,
    json_mode: options.JsonMode = None,
    reasoning_effort: options.ReasoningEffort = None,
    logprobs: options.Logprobs = None,
    top_logprobs: options.TopLogprobs = None,
    samples: options.Samples = None,
    tool_choice: options.ToolChoice = None,
    prompt_cache: options.PromptCache = None,
    prompt_cache_ttl: options.PromptCacheTtl = None,
    prompt_cache_warmup: options.PromptCacheWarmup = None,
    retry_other_model: options.RetryOtherModel = None,
    fsync: options.Fsync = None,
    fresh: options.Fresh = False,
    no_dedupe: options.NoDedupe = None,
    tools_module: options.ToolsModule = None,
    max_rounds: options.MaxRounds = None,
    shard: options.Shard = None,
    files_root: options.FilesRoot = None,
    cache: options.Cache = None,
    no_cache: options.NoCache = None,
    cache_read_only: options.CacheReadOnly = None,
    refresh_cache: options.RefreshCache = None,
    cache_ttl: options.CacheTtl = None,
    quiet: options.Quiet = False,
    json_summary: options.JsonSummary = False,
    verbose: options.Verbose = False,
    dry_run: options.DryRun = False,
) -> None:
    """Run a batch job: every input line ends as one record in the output; rerun to resume."""
    configure_logging(verbose=verbose, quiet=quiet)
    job = load_job(job_file, options.job_overrides(ctx.params), need_output=not dry_run)
    if dry_run:
        stdout = stdout_for("the dry run's plan", "leave stdout open")
        plan = plan_job(job, skip_done=not fresh)
        if json_summary:
            stdout.write(orjson.dumps(plan.to_dict()).decode() + "\n")
        else:
            _print_dry_run(plan, stdout)
        raise typer.Exit(EXIT_OK)
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary)


def _print_dry_run(report: DryRunReport, stdout: TextIO) -> None:
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
    stdout.write("\n".join(lines) + "\n")
