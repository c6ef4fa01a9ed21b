"""`lm-deluge score`: a yes/no question over each text → answer and p_yes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import ToolSummary, configure_logging, execute
from lm_deluge_cli.config import load_job
from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.llm_tools.score import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TOP_LOGPROBS, ScoreTask

__all__ = ["score"]


def score(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    question: Annotated[
        str, typer.Option("--question", help='The yes/no question, e.g. "Is this spam?".')
    ] = "",
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
    reasoning_effort: options.ReasoningEffort = None,
    logprobs: options.Logprobs = None,
    top_logprobs: options.TopLogprobs = None,
    retry_other_model: options.RetryOtherModel = None,
    fsync: options.Fsync = None,
    fresh: options.Fresh = False,
    shard: options.Shard = None,
    cache: options.Cache = None,
    no_cache: options.NoCache = None,
    cache_read_only: options.CacheReadOnly = None,
    refresh_cache: options.RefreshCache = None,
    cache_ttl: options.CacheTtl = None,
    quiet: options.Quiet = False,
    json_summary: options.JsonSummary = False,
    verbose: options.Verbose = False,
) -> None:
    """Ask a yes/no question about each {"id", "text"} line; each record carries "answer"
    ("yes" / "no") and "p_yes" (from the answer token's logprobs; null without them)."""
    configure_logging(verbose=verbose, quiet=quiet)
    job = load_job(job_file, options.job_overrides(ctx.params))
    # The answer is one word: unless told otherwise, reserve (and pay for) no more.
    short = "max_new_tokens" not in job.sampling_set
    task = ScoreTask(
        question,
        logprobs=True if logprobs is None else logprobs,
        top_logprobs=job.sampling.top_logprobs or DEFAULT_TOP_LOGPROBS,
        max_new_tokens=DEFAULT_MAX_NEW_TOKENS if short else None,
    )
    counts = task.counts

    def lines(statistics: RunStatistics) -> list[str]:
        return [f"answers: {counts.yes} yes, {counts.no} no, {counts.unparseable} neither"]

    def fields(statistics: RunStatistics) -> dict[str, Any]:
        return {"yes": counts.yes, "no": counts.no, "unparseable": counts.unparseable}

    tool = ToolSummary("score", lines, fields)
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary, task=task, tool=tool)
