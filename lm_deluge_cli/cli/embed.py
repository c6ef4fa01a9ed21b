"""`lm-deluge embed`: a JSONL of ``{"id", "text"}`` lines → one vector per line."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import ToolSummary, configure_logging, execute
from lm_deluge_cli.config import load_job
from lm_deluge_cli.retrieval.embed import EmbedSettings, run_embed

__all__ = ["embed"]

_EMBED = "Embeddings"

Dimensions = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=_EMBED,
        help="Vector size, where the model offers a choice (default: the model's).",
    ),
]
InputType = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=_EMBED,
        metavar="document|query",
        help="What the texts are, for models that embed documents and queries differently "
        "(Cohere, Voyage, Gemini); Cohere's default is document.",
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=_EMBED,
        help="Texts per request, at most the model's limit (default: the model's limit).",
    ),
]


def embed(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    input: options.Input = None,
    output: options.Output = None,
    model: options.OneModel = None,
    dimensions: Dimensions = None,
    input_type: InputType = None,
    batch_size: BatchSize = None,
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
    """Embed texts: each {"id", "text"} line gets one record with its "embedding"; many texts
    go in each request; rerun to resume, and vectors seen before come from the cache."""
    configure_logging(verbose=verbose, quiet=quiet)
    job = load_job(job_file, options.job_overrides(ctx.params))
    settings = EmbedSettings(dimensions=dimensions, input_type=input_type, batch_size=batch_size)
    runner = partial(run_embed, settings=settings)
    tool = ToolSummary("embed")
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary, tool=tool, runner=runner)
