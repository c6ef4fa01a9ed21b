"""The options `run` and the toolkit commands share, declared once as `Annotated` aliases,
and the one table that says which job value each of them sets (`job_overrides`).

A command lists the ones it takes (``max_attempts: options.MaxAttempts = None``) and hands
its parsed flags to `job_overrides` (``options.job_overrides(ctx.params)``); that every
option reaches its field, with a type the field takes, is checked by
tests/cli/test_options.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from lm_deluge_cli.config import JobOverrides

__all__ = [
    "CACHE_PANEL",
    "LIMITS_PANEL",
    "SAMPLING_PANEL",
    "Cache",
    "CacheReadOnly",
    "CacheTtl",
    "DryRun",
    "FilesRoot",
    "Fresh",
    "Fsync",
    "Input",
    "JobFile",
    "JsonMode",
    "JsonSummary",
    "Limiter",
    "LimiterKey",
    "Logprobs",
    "MaxAttempts",
    "MaxConcurrentRequests",
    "MaxCost",
    "MaxNewTokens",
    "MaxRequestsPerMinute",
    "MaxRounds",
    "MaxTokensPerMinute",
    "Model",
    "NoCache",
    "NoDedupe",
    "OneModel",
    "Output",
    "PromptCache",
    "PromptCacheTtl",
    "PromptCacheWarmup",
    "Quiet",
    "ReasoningEffort",
    "RefreshCache",
    "RequestTimeout",
    "RetryOtherModel",
    "Samples",
    "Shard",
    "Temperature",
    "ToolChoice",
    "ToolsModule",
    "TopLogprobs",
    "TopP",
    "Verbose",
    "job_overrides",
]

LIMITS_PANEL = "Limits"
SAMPLING_PANEL = "Sampling"
CACHE_PANEL = "Cache"

JobFile = Annotated[Path | None, typer.Argument(help="Job file (TOML). Flags override its fields.")]
Input = Annotated[str | None, typer.Option("-i", "--input", help="Input JSONL, or - for stdin.")]
Output = Annotated[
    str | None, typer.Option("-o", "--output", help="Results JSONL, or - for stdout.")
]
Model = Annotated[
    list[str] | None,
    typer.Option("-m", "--model", help="NAME or NAME=WEIGHT; repeat to spray across models."),
]
# embed and rerank: vectors and scores of different models cannot be mixed.
OneModel = Annotated[
    list[str] | None,
    typer.Option("-m", "--model", help="The model (provider:model, or a known name)."),
]

# --- limits ---------------------------------------------------------------------------------

MaxRequestsPerMinute = Annotated[
    str | None,
    typer.Option(
        envvar="LM_DELUGE_MAX_REQUESTS_PER_MINUTE",
        rich_help_panel=LIMITS_PANEL,
        metavar="N|auto",
        help="Requests per minute for the whole run (0 = unlimited; auto = learn each "
        "model's limit from its provider's rate-limit headers).",
    ),
]
MaxTokensPerMinute = Annotated[
    str | None,
    typer.Option(
        envvar="LM_DELUGE_MAX_TOKENS_PER_MINUTE",
        rich_help_panel=LIMITS_PANEL,
        metavar="N|auto",
        help=(
            "Tokens per minute for the whole run (0 = unlimited; auto as above). A line "
            "needing more (its prompt plus max_new_tokens) is refused, not sent."
        ),
    ),
]
MaxConcurrentRequests = Annotated[
    int | None,
    typer.Option(envvar="LM_DELUGE_MAX_CONCURRENT_REQUESTS", rich_help_panel=LIMITS_PANEL),
]
MaxAttempts = Annotated[int | None, typer.Option(rich_help_panel=LIMITS_PANEL)]
MaxCost = Annotated[
    float | None,
    typer.Option(
        rich_help_panel=LIMITS_PANEL,
        metavar="USD",
        help="Spending cap in US dollars: send no request that could take what the output "
        "has cost (earlier runs included) past it; rerun with a higher cap to go on. "
        "Every model needs a known price.",
    ),
]
RequestTimeout = Annotated[
    float | None, typer.Option(rich_help_panel=LIMITS_PANEL, help="Seconds per request.")
]
Limiter = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=LIMITS_PANEL,
        metavar="REDIS_URL",
        help="Share the run's requests/min and tokens/min with every process using the "
        "same Redis URL and --limiter-key (give them all the same limits).",
    ),
]
LimiterKey = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=LIMITS_PANEL, help='Name of the shared budget in Redis (default "default").'
    ),
]

# --- sampling -------------------------------------------------------------------------------

MaxNewTokens = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=SAMPLING_PANEL,
        help=(
            "The longest answer, in tokens. Above every model's context window the run is "
            "refused before sending."
        ),
    ),
]
Temperature = Annotated[float | None, typer.Option(rich_help_panel=SAMPLING_PANEL)]
TopP = Annotated[float | None, typer.Option(rich_help_panel=SAMPLING_PANEL)]
JsonMode = Annotated[
    bool | None,
    typer.Option(
        "--json-mode/--no-json-mode", rich_help_panel=SAMPLING_PANEL, help="Ask for a JSON object."
    ),
]
ReasoningEffort = Annotated[
    str | None,
    typer.Option(rich_help_panel=SAMPLING_PANEL, help="minimal | low | medium | high"),
]
Logprobs = Annotated[
    bool | None, typer.Option("--logprobs/--no-logprobs", rich_help_panel=SAMPLING_PANEL)
]
TopLogprobs = Annotated[int | None, typer.Option(rich_help_panel=SAMPLING_PANEL)]
Samples = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=SAMPLING_PANEL,
        help="Independent answers per line (1 to 128); raising it later sends only the new ones.",
    ),
]
ToolChoice = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=SAMPLING_PANEL,
        help="auto | none | required | a tool's name (the job's [[tools]]).",
    ),
]
PromptCache = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=SAMPLING_PANEL,
        help="system | tools | system_and_tools | last_user | none: where Anthropic and "
        "Bedrock prompt-cache breakpoints go.",
    ),
]
PromptCacheWarmup = Annotated[
    float | None,
    typer.Option(
        rich_help_panel=SAMPLING_PANEL,
        metavar="SECONDS",
        help="Requests sharing a cached prefix wait up to this long for the first one to "
        "answer, so they read the prompt cache instead of each writing it (0: off; "
        "default 30 with --prompt-cache).",
    ),
]
PromptCacheTtl = Annotated[
    str | None,
    typer.Option(rich_help_panel=SAMPLING_PANEL, help="5m (default) | 1h: how long they last."),
]

# --- the run --------------------------------------------------------------------------------

RetryOtherModel = Annotated[
    bool | None,
    typer.Option(
        "--retry-other-model/--no-retry-other-model",
        help="Retry a failed request on another model.",
    ),
]
Fsync = Annotated[
    str | None, typer.Option(help="none | end (default) | always: when results are fsynced.")
]
Fresh = Annotated[bool, typer.Option(help="Start over: move the old output aside (never deleted).")]
ToolsModule = Annotated[
    str | None,
    typer.Option(
        metavar="FILE.py",
        help="Run each line as an agent loop: the file's functions answer the tool calls.",
    ),
]
MaxRounds = Annotated[
    int | None,
    typer.Option(help="The most rounds an agent loop sends per line (default 10)."),
]
NoDedupe = Annotated[
    bool | None,
    typer.Option(
        "--no-dedupe",
        help="Send identical lines as requests of their own (each cached under its id).",
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        metavar="K/N",
        help="Run only part K (from 0) of N of the input, split by id; N processes "
        "with 0/N … N-1/N together run every line once.",
    ),
]
FilesRoot = Annotated[
    str | None,
    typer.Option(
        metavar="DIR",
        help="Read the images and files that input lines name only from under DIR: "
        "paths, file: URLs and symlinks leading outside it become error records. "
        "Default: no restriction.",
    ),
]

# --- cache ----------------------------------------------------------------------------------

Cache = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=CACHE_PANEL,
        help="Result cache: a directory (diskcache), a .sqlite file, redis://HOST:PORT/DB, "
        "or memory:. Default: $LM_DELUGE_CACHE_DIR, else ~/.cache/lm-deluge.",
    ),
]
NoCache = Annotated[
    bool | None,
    typer.Option(
        "--no-cache", rich_help_panel=CACHE_PANEL, help="Neither read nor write the cache."
    ),
]
CacheReadOnly = Annotated[
    bool | None,
    typer.Option("--cache-read-only", rich_help_panel=CACHE_PANEL, help="Use hits; store nothing."),
]
RefreshCache = Annotated[
    bool | None,
    typer.Option(
        "--refresh-cache",
        rich_help_panel=CACHE_PANEL,
        help="Ignore hits: send every request and store the new answers.",
    ),
]
CacheTtl = Annotated[
    float | None,
    typer.Option(rich_help_panel=CACHE_PANEL, help="Seconds a stored answer stays valid."),
]

# --- what is shown --------------------------------------------------------------------------

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")]
JsonSummary = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log retries.")]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Send nothing: read the input and print, per model, the requests, estimated "
        "input tokens, max output tokens and estimated cost. Needs no API keys and no -o.",
    ),
]


# --- the job values they set ----------------------------------------------------------------


def job_overrides(flags: Mapping[str, Any]) -> JobOverrides:
    """The job values a command's flags set (`flags`: its parsed parameters by name, Typer's
    ``ctx.params``); a flag not given is None and leaves the job file's value or the default.
    """
    return JobOverrides(
        # Every command that runs a job takes these: a missing one is a KeyError, at once.
        input=flags["input"],
        output=flags["output"],
        # -m, repeatable: the models, each NAME or NAME=WEIGHT.
        models=tuple(flags["model"] or ()),
        max_requests_per_minute=flags["max_requests_per_minute"],
        max_tokens_per_minute=flags["max_tokens_per_minute"],
        max_concurrent_requests=flags["max_concurrent_requests"],
        max_attempts=flags["max_attempts"],
        max_cost=flags["max_cost"],
        request_timeout=flags["request_timeout"],
        limiter=flags["limiter"],
        limiter_key=flags["limiter_key"],
        fsync=flags["fsync"],
        shard=flags["shard"],
        cache=flags["cache"],
        no_cache=flags["no_cache"],
        cache_read_only=flags["cache_read_only"],
        refresh_cache=flags["refresh_cache"],
        cache_ttl=flags["cache_ttl"],
        # Only commands that send chat requests take these, each a subset (run takes all).
        max_new_tokens=flags.get("max_new_tokens"),
        temperature=flags.get("temperature"),
        top_p=flags.get("top_p"),
        json_mode=flags.get("json_mode"),
        reasoning_effort=flags.get("reasoning_effort"),
        logprobs=flags.get("logprobs"),
        top_logprobs=flags.get("top_logprobs"),
        samples=flags.get("samples"),
        tool_choice=flags.get("tool_choice"),
        prompt_cache=flags.get("prompt_cache"),
        prompt_cache_ttl=flags.get("prompt_cache_ttl"),
        prompt_cache_warmup=flags.get("prompt_cache_warmup"),
        retry_other_model=flags.get("retry_other_model"),
        no_dedupe=flags.get("no_dedupe"),
        tools_module=flags.get("tools_module"),
        max_rounds=flags.get("max_rounds"),
        files_root=flags.get("files_root"),
    )
