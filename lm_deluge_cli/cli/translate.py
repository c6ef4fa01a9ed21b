"""`lm-deluge translate`: texts → another language; texts already in it pass through."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lm_deluge_cli.cli import options
from lm_deluge_cli.cli.execute import ToolSummary, configure_logging, execute
from lm_deluge_cli.config import load_job
from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.llm_tools.detect import DEFAULT_THRESHOLD, INSTALL_HINT, load_detector
from lm_deluge_cli.llm_tools.languages import language_name
from lm_deluge_cli.llm_tools.translate import TranslateTask, check_language

__all__ = ["translate"]


def translate(
    ctx: typer.Context,
    job_file: options.JobFile = None,
    to: Annotated[
        str, typer.Option(metavar="LANG", help="Target language, an ISO 639-1 code (en, fr …).")
    ] = "en",
    detect: Annotated[
        bool,
        typer.Option(
            "--detect/--no-detect",
            help="Pass texts already in the target language through without a request "
            "(offline detection; needs the translate extra).",
        ),
    ] = True,
    threshold: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=1.0,
            help="How sure the detector must be that a text is in the target language for "
            "it to pass through.",
        ),
    ] = DEFAULT_THRESHOLD,
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
    cache: options.Cache = None,
    no_cache: options.NoCache = None,
    cache_read_only: options.CacheReadOnly = None,
    refresh_cache: options.RefreshCache = None,
    cache_ttl: options.CacheTtl = None,
    quiet: options.Quiet = False,
    json_summary: options.JsonSummary = False,
    verbose: options.Verbose = False,
) -> None:
    """Translate {"id", "text"} lines (into English unless --to); each record carries
    "translation", "detected_language" and "passed_through"."""
    configure_logging(verbose=verbose, quiet=quiet)
    target = check_language(to)
    job = load_job(job_file, options.job_overrides(ctx.params))
    # Loaded before the run starts (most of a second), never on its event loop.
    detector = load_detector(threshold) if detect else None
    task = TranslateTask(target, detector=detector)
    why = "--no-detect" if not detect else f"no language detector: {INSTALL_HINT}"

    def lines(statistics: RunStatistics) -> list[str]:
        if detector is None:
            return [f"passed through: none, every line was sent ({why})"]
        return [
            f"passed through: {statistics.passed_through} already in "
            f"{language_name(target)}, with no request"
        ]

    def fields(statistics: RunStatistics) -> dict[str, Any]:
        return {"to": target, "detector": detector is not None}

    tool = ToolSummary("translate", lines, fields)
    execute(job, fresh=fresh, quiet=quiet, json_summary=json_summary, task=task, tool=tool)
