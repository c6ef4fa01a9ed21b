"""`lm-deluge rerank`: documents ranked by relevance to a query."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import ToolSummary, configure_logging, execute
from lm_deluge_cli.config import load_job
from lm_deluge_cli.retrieval.rerank import RerankSettings, run_rerank

__all__ = ["rerank"]

_RERANK = "Rerank"

Query = Annotated[
    str | None,
    typer.Option(
        "--query",
        rich_help_panel=_RERANK,
        help='Rank the input\'s {"id", "text"} lines (documents) for this query; without it, '
        'each input line is {"id", "query", "documents": [...]}.',
    ),
]
TopN = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=_RERANK,
        help="Keep the N best results of each query (query lines only; default: all).",
    ),
]


def rerank(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    input: options.Input = None,
    output: options.Output = None,
    model: options.OneModel = None,
    query: Query = None,
    top_n: TopN = None,
    max_requests_per_minute: options.MaxRequestsPerMinute = None,
    max_tokens_per_minute: options.MaxTokensPerMinute = None,
    max_concurrent_requests: options.MaxConcurrentRequests = None,
    max_attempts: options.MaxAttempts = None,
    request_timeout: options.RequestTimeout = None,
    max_cost: options.MaxCost = None,
    limiter: options.Limiter = None,
    limiter_key: options.LimiterKey = None,
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
    """Rerank documents: with --query, one record per document, the file sorted best first
    once complete; else one record per query line with its sorted "results"."""
    configure_logging(verbose=verbose, quiet=quiet)
    job = load_job(job_file, options.job_overrides(ctx.params))
    settings = RerankSettings(query=query, top_n=top_n)
    runner = partial(run_rerank, settings=settings)
    tool = ToolSummary("rerank")
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary, tool=tool, runner=runner)
