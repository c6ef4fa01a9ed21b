"""`lm-deluge extract`: texts, images or files → JSON objects matching a schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import ToolSummary, configure_logging, execute
from lm_deluge_cli.config import load_job
from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.llm_tools.extract import SCHEMA_MISMATCH, ExtractTask
from lm_deluge_cli.llm_tools.schemas import check_schema, load_schema

__all__ = ["extract"]


def extract(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="JSON Schema file each answer must match (default: the job's "
            "sampling.json_schema).",
        ),
    ] = None,
    document_name: Annotated[
        str | None,
        typer.Option(help='What the input is, in the prompt ("invoice", "resume" …).'),
    ] = None,
    object_name: Annotated[
        str | None, typer.Option(help='What to extract, in the prompt ("contact" …).')
    ] = None,
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
    retry_other_model: options.RetryOtherModel = None,
    fsync: options.Fsync = None,
    fresh: options.Fresh = False,
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
) -> None:
    """Extract JSON matching a schema from each line: {"id", "text"} lines, or any line `run`
    takes (prompts, messages with images or files). Each ok record carries "data"."""
    configure_logging(verbose=verbose, quiet=quiet)
    checked = load_schema(schema) if schema is not None else None
    job = load_job(job_file, options.job_overrides(ctx.params))
    if checked is None:
        if job.sampling.json_schema is None:
            raise ConfigError(
                "no schema: give --schema FILE (a JSON Schema), or json_schema under the "
                "job's [sampling]"
            )
        check_schema(job.sampling.json_schema, f"{job.job_file}: sampling.json_schema")
        checked = job.sampling.json_schema
    task = ExtractTask(checked, document_name=document_name, object_name=object_name)
    tool = ToolSummary("extract", _lines, _fields)
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary, task=task, tool=tool)


def _failed_schema(statistics: RunStatistics) -> int:
    return statistics.errors_by_type.get(SCHEMA_MISMATCH, 0)


def _lines(statistics: RunStatistics) -> list[str]:
    failed = _failed_schema(statistics)
    return (
        [f"schema: {failed} answers still broke the schema after every attempt"] if failed else []
    )


def _fields(statistics: RunStatistics) -> dict[str, Any]:
    return {"schema_failures": _failed_schema(statistics)}
