"""Job file + flags → a frozen `Job`. Every default lives here as a named constant."""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal

from lm_deluge_cli.cache.base import Cache
from lm_deluge_cli.cache.redact import redact_url
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.shard import Shard, parse_shard
from lm_deluge_cli.providers.registry import Registry, load_registry, parse_user_models
from lm_deluge_cli.sampling import REASONING_EFFORTS, check_sampling_value, describe_value
from lm_deluge_cli.tool_use.definitions import (
    ToolDefinitionError,
    check_tool_choice,
    check_tools,
    tool_names,
)
from lm_deluge_cli.types import (
    PROMPT_CACHE_TTLS,
    SAMPLING_FIELDS,
    PromptCache,
    RequestDefaults,
    SamplingParams,
)

__all__ = [
    "AUTO",
    "AUTO_FALLBACK_REQUESTS_PER_MINUTE",
    "AUTO_FALLBACK_TOKENS_PER_MINUTE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_REQUESTS_PER_MINUTE",
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MAX_TOKENS_PER_MINUTE",
    "DEFAULT_PROMPT_CACHE_WARMUP_S",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "FSYNC_POLICIES",
    "REASONING_EFFORTS",
    "STDIO",
    "CacheConfig",
    "Job",
    "JobOverrides",
    "Limits",
    "ModelEntry",
    "Rate",
    "check_sampling_value",
    "describe_value",
    "load_job",
    "parse_model_flag",
    "validate_sampling",
]

DEFAULT_MAX_REQUESTS_PER_MINUTE = 1_000.0
DEFAULT_MAX_TOKENS_PER_MINUTE = 100_000.0
DEFAULT_MAX_CONCURRENT_REQUESTS = 256
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_REQUEST_TIMEOUT_S = 60.0
DEFAULT_FSYNC = "end"
DEFAULT_LIMITER_KEY = "default"
# How long a request waits for the first one sharing its cached prefix, when the job uses
# prompt caching (see engine/warmup.py).
DEFAULT_PROMPT_CACHE_WARMUP_S = 30.0
# Rounds an agent loop may take when the job says nothing: enough for most tool chains,
# few enough that a model calling tools for ever costs little.
DEFAULT_MAX_ROUNDS = 10
FSYNC_POLICIES = ("none", "end", "always")
# "unlimited" in a job file (or 0 on the command line) switches a rate limit off.
UNLIMITED = "unlimited"
# "auto" (file or flag): learn the limit from the provider's rate-limit headers.
AUTO: Final = "auto"
# What an "auto" limit paces at when the provider sends no rate-limit headers at all
# (Gemini, Bedrock, Cohere, most local servers): about one request a second, so a
# run on a low tier is not refused wholesale. A number in the job goes faster.
AUTO_FALLBACK_REQUESTS_PER_MINUTE = 60.0
AUTO_FALLBACK_TOKENS_PER_MINUTE = 60_000.0
STDIO = "-"

# A per-minute limit: a number, AUTO (learned from the provider), or None (unlimited).
Rate = float | Literal["auto"] | None


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model a job sprays requests across."""

    name: str
    weight: float = 1.0
    base_url: str | None = None
    # None: the provider's usual variable; "": send no key (local servers).
    api_key_env: str | None = None
    sampling: Mapping[str, Any] = field(default_factory=dict)
    # None: only the run's limits apply (an "auto" one is learned for this model alone).
    max_requests_per_minute: Rate = None
    max_tokens_per_minute: Rate = None
    # Simulator settings for mock models (see MockSettings).
    mock: Mapping[str, Any] = field(default_factory=dict)
    # AWS region of a Bedrock model (None: from base_url, AWS_REGION or AWS_DEFAULT_REGION).
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits shared by the whole run. None for a rate means no limit.

    An AUTO rate is learned per model from its provider's rate-limit headers.
    `max_cost` caps the spend in USD on the job's output, earlier runs included.
    """

    max_requests_per_minute: Rate = DEFAULT_MAX_REQUESTS_PER_MINUTE
    max_tokens_per_minute: Rate = DEFAULT_MAX_TOKENS_PER_MINUTE
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    max_cost: float | None = None
    # A redis:// URL: the run's rates are shared with every process using the same URL and
    # `limiter_key` (None: this process alone).
    limiter: str | None = None
    limiter_key: str = DEFAULT_LIMITER_KEY


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The result cache. `location` None is the default directory (see cache.spec);
    `read_only` uses hits but stores nothing; `refresh` ignores hits and stores anew.

    `backend`, set from Python only, is an open cache used instead of `location`: every
    run given it shares its entries, and no run closes it (its owner does). It takes
    part in ``==`` but not in the hash or the repr (which could show its entries).
    """

    enabled: bool = True
    location: str | None = None
    read_only: bool = False
    refresh: bool = False
    ttl_s: float | None = None
    backend: Cache | None = field(default=None, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Job:
    """Everything a run needs, validated."""

    input: str
    output: str
    models: tuple[ModelEntry, ...]
    limits: Limits = Limits()
    sampling: SamplingParams = field(default_factory=SamplingParams)
    retry_other_model: bool = False
    fsync: str = DEFAULT_FSYNC
    job_file: Path | None = None
    # The job's own model registry entries (`[[registry]]`), same keys as models.toml.
    registry: tuple[Mapping[str, Any], ...] = ()
    cache: CacheConfig = CacheConfig()
    # This process's part of the input (None: all of it).
    shard: Shard | None = None
    # The only folder local files named by input lines may be read from (None: anywhere).
    files_root: str | None = None
    # The sampling fields the job file or a flag set (the others are defaults), for tools
    # whose own defaults differ from run's (score answers in a few tokens).
    sampling_set: frozenset[str] = frozenset()
    # Tools, tool choice and prompt cache key for every line that gives none of its own.
    requests: RequestDefaults = field(default_factory=RequestDefaults)
    # Prompt-cache breakpoints for Anthropic and Bedrock models (None: the lines' own only).
    prompt_cache: PromptCache | None = None
    # Identical lines share one request; False sends each line as its own (and caches it
    # under its id), for users who repeat lines on purpose.
    dedupe: bool = True
    # Seconds a request waits for the first one with its cached prefix (prompt-cache
    # warm-up); 0: no warm-up. Default: DEFAULT_PROMPT_CACHE_WARMUP_S with prompt_cache.
    prompt_cache_warmup_s: float = 0.0
    # A Python file whose functions answer tool calls: each line runs as an agent loop of
    # at most `max_rounds` rounds (None: lines are single requests).
    tools_module: str | None = None
    max_rounds: int = DEFAULT_MAX_ROUNDS

    def model_registry(self) -> Registry:
        """The built-in registry plus this job's own entries."""
        if not self.registry:
            return load_registry()
        return parse_user_models(self.registry, source=str(self.job_file or "job"))


@dataclass(slots=True)
class JobOverrides:
    """Values given as flags; None means "not given" (the job file or default applies)."""

    input: str | None = None
    output: str | None = None
    models: Sequence[str] = ()
    # A number (0 = unlimited) or "auto", as typed on the command line.
    max_requests_per_minute: float | str | None = None
    max_tokens_per_minute: float | str | None = None
    max_concurrent_requests: int | None = None
    max_attempts: int | None = None
    request_timeout: float | None = None
    max_cost: float | None = None
    limiter: str | None = None
    limiter_key: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    json_mode: bool | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    retry_other_model: bool | None = None
    fsync: str | None = None
    # --cache PATH|URL, --no-cache, --cache-read-only, --refresh-cache, --cache-ttl SECONDS.
    cache: str | None = None
    no_cache: bool | None = None
    cache_read_only: bool | None = None
    refresh_cache: bool | None = None
    cache_ttl: float | None = None
    shard: str | None = None
    files_root: str | None = None
    samples: int | None = None
    tool_choice: str | None = None
    prompt_cache: str | None = None
    prompt_cache_ttl: str | None = None
    # --no-dedupe
    no_dedupe: bool | None = None
    tools_module: str | None = None
    max_rounds: int | None = None
    prompt_cache_warmup: float | None = None


_TOP_KEYS = (
    "input",
    "output",
    "models",
    "limits",
    "sampling",
    "retry_other_model",
    "fsync",
    "registry",
    "cache",
    "shard",
    "files_root",
    "tools",
    "tool_choice",
    "prompt_cache",
    "prompt_cache_ttl",
    "prompt_cache_key",
    "dedupe",
    "tools_module",
    "max_rounds",
    "prompt_cache_warmup",
)
_CACHE_KEYS = ("enabled", "path", "read_only", "refresh", "ttl")
_MODEL_KEYS = tuple(f.name for f in fields(ModelEntry))
_LIMIT_KEYS = tuple(f.name for f in fields(Limits))
_LIMITER_SCHEMES = ("redis", "rediss", "unix")
_LIMITER_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def load_job(
    job_file: Path | None, overrides: JobOverrides | None = None, *, need_output: bool = True
) -> Job:
    """Read and validate a job file (if any), apply flag overrides, and check paths.

    With `need_output` False (a dry run, which writes nothing) a missing output is
    allowed and left as "".
    """
    overrides = overrides or JobOverrides()
    data: dict[str, Any] = {}
    where = "flags"
    base_dir = Path.cwd()
    if job_file is not None:
        where = str(job_file)
        try:
            data = tomllib.loads(job_file.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"job file {job_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read job file {job_file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{job_file} is not valid TOML: {exc}") from None
        base_dir = job_file.resolve().parent
    _check_keys(data, _TOP_KEYS, where, "")

    input_path = overrides.input or _opt_str(data, "input", where)
    output_path = overrides.output or _opt_str(data, "output", where)
    if not input_path:
        raise ConfigError("no input: give -i FILE (or -i - for stdin), or set input in the job")
    if not output_path and need_output:
        raise ConfigError("no output: give -o FILE (or -o - for stdout), or set output in the job")
    output_path = output_path or ""
    # Paths from the job file resolve against its folder; paths from flags against the cwd.
    if not overrides.input and input_path != STDIO:
        input_path = str(base_dir / input_path)
    if not overrides.output and output_path not in (STDIO, ""):
        output_path = str(base_dir / output_path)

    if overrides.models:
        models = tuple(parse_model_flag(m) for m in overrides.models)
    else:
        models = _models(data.get("models"), where)
    if not models:
        raise ConfigError("no model: give -m PROVIDER:MODEL, or add a [[models]] entry to the job")

    limits = _limits(data.get("limits", {}), where, overrides)
    sampling_data = _table(data.get("sampling", {}), where, "sampling")
    sampling_overrides = validate_sampling(sampling_data, f"{where}: sampling", base_dir)
    for name in SAMPLING_FIELDS:
        # Only some sampling fields have a flag (stop and json_schema live in files).
        value = getattr(overrides, name, None)
        if value is not None:
            try:
                sampling_overrides[name] = check_sampling_value(name, value)
            except ValueError as exc:
                raise ConfigError(f"--{name.replace('_', '-')} {exc}") from None
    retry_other = data.get("retry_other_model", False)
    if overrides.retry_other_model is not None:
        retry_other = overrides.retry_other_model
    if not isinstance(retry_other, bool):
        raise ConfigError(f"{where}: retry_other_model must be true or false")
    fsync = overrides.fsync or data.get("fsync", DEFAULT_FSYNC)
    if fsync not in FSYNC_POLICIES:
        raise ConfigError(f"{where}: fsync must be one of {', '.join(FSYNC_POLICIES)}")
    registry_entries = data.get("registry", [])
    if not isinstance(registry_entries, list) or not all(
        isinstance(e, dict) for e in registry_entries
    ):
        raise ConfigError(f"{where}: registry must be a list of [[registry]] tables")
    prompt_cache = _prompt_cache(data, where, overrides)
    job = Job(
        input=input_path,
        output=output_path,
        models=models,
        limits=limits,
        sampling=SamplingParams().merged(sampling_overrides),
        retry_other_model=retry_other,
        fsync=fsync,
        job_file=job_file,
        registry=tuple(registry_entries),
        cache=_cache(data.get("cache", {}), where, overrides, base_dir),
        shard=_shard(overrides.shard, data.get("shard"), where),
        files_root=_files_root(overrides.files_root, data.get("files_root"), where, base_dir),
        sampling_set=frozenset(sampling_overrides),
        requests=_request_defaults(data, where, overrides.tool_choice, base_dir),
        prompt_cache=prompt_cache,
        prompt_cache_warmup_s=_warmup(data, where, overrides, prompt_cache),
        dedupe=_dedupe(data, where, overrides),
        **_agent(data, where, overrides, base_dir),
    )
    # Checked now, so a bad entry is a usage error before anything else happens.
    job.model_registry()
    return job


def _request_defaults(
    data: Mapping[str, Any], where: str, flag_choice: str | None, base_dir: Path
) -> RequestDefaults:
    """The job's tools (``[[tools]]``, whose parameters may name a JSON file beside the job),
    tool choice and prompt cache key."""
    raw_tools = data.get("tools", [])
    if isinstance(raw_tools, list):
        raw_tools = [
            _tool_parameters_file(tool, base_dir, f"{where}: tools[{i}]")
            for i, tool in enumerate(raw_tools)
        ]
    try:
        tools = check_tools(raw_tools, f"{where}: tools")
        choice_label = "--tool-choice" if flag_choice is not None else f"{where}: tool_choice"
        raw_choice = flag_choice if flag_choice is not None else data.get("tool_choice")
        choice = None
        if raw_choice is not None:
            choice = check_tool_choice(raw_choice, tool_names(tools), choice_label)
    except ToolDefinitionError as exc:
        raise ConfigError(str(exc)) from None
    key = data.get("prompt_cache_key")
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{where}: prompt_cache_key must be a non-empty string")
    return RequestDefaults(tuple(tools), choice, key)


def _tool_parameters_file(tool: Any, base_dir: Path, where: str) -> Any:
    """A [[tools]] table whose parameters name a .json file, with the file's schema in."""
    if not isinstance(tool, dict) or not isinstance(tool.get("parameters"), str):
        return tool
    return {
        **tool,
        "parameters": _read_schema(base_dir / tool["parameters"], f"{where}.parameters"),
    }


def _agent(
    data: Mapping[str, Any], where: str, overrides: JobOverrides, base_dir: Path
) -> dict[str, Any]:
    """tools_module (a Python file: from the cwd as a flag, beside the job in the file) and
    max_rounds; max_rounds alone has nothing to run its rounds with."""
    module = overrides.tools_module
    label = "--tools-module"
    if module is None and data.get("tools_module") is not None:
        module, label = data["tools_module"], f"{where}: tools_module"
        if not isinstance(module, str) or not module:
            raise ConfigError(f"{label} must be the path of a Python file")
        module = str(base_dir / module)
    rounds = overrides.max_rounds
    rounds_label = "--max-rounds"
    if rounds is None and "max_rounds" in data:
        rounds, rounds_label = data["max_rounds"], f"{where}: max_rounds"
    if rounds is not None:
        rounds = _positive_int(rounds, rounds_label)
        if module is None:
            raise ConfigError(
                f"{rounds_label} needs tools to run: give tools_module (a Python file whose "
                "functions answer the tool calls)"
            )
    if module is not None:
        path = Path(module).expanduser().absolute()
        if path.suffix != ".py" or not path.is_file():
            raise ConfigError(f"{label} {path} is not a Python file")
        module = str(path)
    return {"tools_module": module, "max_rounds": rounds or DEFAULT_MAX_ROUNDS}


def _warmup(
    data: Mapping[str, Any], where: str, overrides: JobOverrides, prompt_cache: PromptCache | None
) -> float:
    value: Any = overrides.prompt_cache_warmup
    label = "--prompt-cache-warmup"
    if value is None:
        value, label = data.get("prompt_cache_warmup"), f"{where}: prompt_cache_warmup"
    if value is None:
        return DEFAULT_PROMPT_CACHE_WARMUP_S if prompt_cache is not None else 0.0
    if not _is_number(value) or not 0 <= value < math.inf:
        raise ConfigError(
            f"{label} must be a number of seconds (0: no warm-up), got {describe_value(value)}"
        )
    return float(value)


def _dedupe(data: Mapping[str, Any], where: str, overrides: JobOverrides) -> bool:
    if overrides.no_dedupe:
        return False
    value = data.get("dedupe", True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: dedupe must be true or false")
    return value


def _prompt_cache(
    data: Mapping[str, Any], where: str, overrides: JobOverrides
) -> PromptCache | None:
    """Where the job's prompt-cache breakpoints go, and their TTL (None: nowhere)."""
    placement = overrides.prompt_cache or data.get("prompt_cache")
    ttl = overrides.prompt_cache_ttl or data.get("prompt_cache_ttl") or PROMPT_CACHE_TTLS[0]
    if ttl not in PROMPT_CACHE_TTLS:
        label = "--prompt-cache-ttl" if overrides.prompt_cache_ttl else f"{where}: prompt_cache_ttl"
        raise ConfigError(f"{label} must be one of {', '.join(PROMPT_CACHE_TTLS)}, got {ttl!r}")
    if placement is None or placement == "none":
        return None
    try:
        return PromptCache(placement, ttl)
    except ValueError as exc:
        label = "--prompt-cache" if overrides.prompt_cache else f"{where}: prompt_cache"
        raise ConfigError(f"{label} {exc}") from None


def _cache(raw: Any, where: str, overrides: JobOverrides, base_dir: Path) -> CacheConfig:
    table = _table(raw, where, "cache")
    _check_keys(table, _CACHE_KEYS, where, "cache.")
    flags = {
        "enabled": None if overrides.no_cache is None else not overrides.no_cache,
        "read_only": overrides.cache_read_only,
        "refresh": overrides.refresh_cache,
    }
    values: dict[str, bool] = {}
    for key, flag in flags.items():
        value = table.get(key, key == "enabled") if flag is None else flag
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: cache.{key} must be true or false")
        values[key] = value
    location = overrides.cache
    if location is None:
        path = table.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            raise ConfigError(f"{where}: cache.path must be a directory, a .sqlite file or a URL")
        # A path in the job file is relative to it; a URL or memory: is not a path.
        if path is not None and not _is_cache_url(path):
            path = str(base_dir / Path(path).expanduser())
        location = path
    ttl = overrides.cache_ttl if overrides.cache_ttl is not None else table.get("ttl")
    if ttl is not None and (not _is_number(ttl) or not 0 < ttl < math.inf):
        name = "--cache-ttl" if overrides.cache_ttl is not None else f"{where}: cache.ttl"
        raise ConfigError(f"{name} must be a positive number of seconds, got {ttl!r}")
    if values["read_only"] and values["refresh"]:
        raise ConfigError(f"{where}: cache: read_only and refresh cannot both be set")
    return CacheConfig(
        enabled=values["enabled"],
        location=location,
        read_only=values["read_only"],
        refresh=values["refresh"],
        ttl_s=None if ttl is None else float(ttl),
    )


def _files_root(flag: str | None, value: Any, where: str, base_dir: Path) -> str | None:
    """The files root as an absolute path: a flag from the cwd, the job's key from its folder."""
    if flag is not None:
        label, path = "--files-root", Path(flag).expanduser().absolute()
    elif value is None:
        return None
    elif not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: files_root must be a folder path (a string)")
    else:
        label, path = f"{where}: files_root", base_dir / Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"{label} {path} is not a folder; give the folder that input lines' images "
            "and files must be under"
        )
    return str(path)


def _shard(flag: str | None, value: Any, where: str) -> Shard | None:
    if flag is not None:
        return parse_shard(flag)
    if value is None:
        return None
    return parse_shard(value, f"{where}: shard")


def _is_cache_url(spec: str) -> bool:
    return spec == "memory:" or spec.partition("://")[0] in ("redis", "rediss", "unix")


def parse_model_flag(value: str) -> ModelEntry:
    """`NAME` or `NAME=WEIGHT` from -m/--model."""
    name, sep, weight_text = value.partition("=")
    name = name.strip()
    if not name:
        raise ConfigError(f"-m {value!r}: give a model name such as openai:gpt-4.1-mini")
    weight = 1.0
    if sep:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ConfigError(f"-m {value!r}: the weight after '=' must be a number") from None
        if not weight > 0 or not math.isfinite(weight):
            raise ConfigError(f"-m {value!r}: the weight must be positive")
    return ModelEntry(name=name, weight=weight)


def validate_sampling(
    data: Mapping[str, Any], where: str, base_dir: Path | None = None
) -> dict[str, Any]:
    """Check sampling overrides (any subset of SamplingParams' fields); returns a clean copy.

    With `base_dir` (a job file's folder) a string json_schema names a JSON file there.
    """
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SAMPLING_FIELDS:
            raise ConfigError(_unknown(key, SAMPLING_FIELDS, where))
        if key == "json_schema" and isinstance(value, str) and base_dir is not None:
            value = _read_schema(base_dir / value, f"{where}.{key}")
        try:
            clean[key] = check_sampling_value(key, value)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key} {exc}") from None
    return clean


def _read_schema(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {path} as JSON: {exc}") from None


def _models(raw: Any, where: str) -> tuple[ModelEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: models must be a list of [[models]] tables")
    entries = []
    for index, item in enumerate(raw):
        label = f"models[{index}]"
        table = _table(item, where, label)
        _check_keys(table, _MODEL_KEYS, where, label + ".")
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f'{where}: {label}.name is required, e.g. "openai:gpt-4.1-mini"')
        weight = table.get("weight", 1.0)
        if not _is_number(weight) or not weight > 0 or not math.isfinite(weight):
            raise ConfigError(f"{where}: {label}.weight must be a positive number")
        for key in ("base_url", "api_key_env"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{where}: {label}.{key} must be a string")
        region = table.get("region")
        if region is not None and not (isinstance(region, str) and _AWS_REGION.fullmatch(region)):
            raise ConfigError(
                f'{where}: {label}.region must be an AWS region such as "us-east-1", got {region!r}'
            )
        mock = _table(table.get("mock", {}), where, f"{label}.mock")
        entries.append(
            ModelEntry(
                name=name,
                weight=float(weight),
                base_url=table.get("base_url"),
                api_key_env=table.get("api_key_env"),
                sampling=validate_sampling(
                    _table(table.get("sampling", {}), where, f"{label}.sampling"),
                    f"{where}: {label}.sampling",
                ),
                max_requests_per_minute=_rate(
                    table.get("max_requests_per_minute"),
                    f"{where}: {label}.max_requests_per_minute",
                ),
                max_tokens_per_minute=_rate(
                    table.get("max_tokens_per_minute"), f"{where}: {label}.max_tokens_per_minute"
                ),
                mock=mock,
                region=region,
            )
        )
    return tuple(entries)


def _limits(raw: Any, where: str, overrides: JobOverrides) -> Limits:
    table = _table(raw, where, "limits")
    _check_keys(table, _LIMIT_KEYS, where, "limits.")
    defaults = Limits()
    rpm = _rate(
        table.get("max_requests_per_minute", defaults.max_requests_per_minute),
        f"{where}: limits.max_requests_per_minute",
    )
    tpm = _rate(
        table.get("max_tokens_per_minute", defaults.max_tokens_per_minute),
        f"{where}: limits.max_tokens_per_minute",
    )
    # On the command line 0 means unlimited; in files, the word "unlimited" does.
    if overrides.max_requests_per_minute is not None:
        rpm = _flag_rate(overrides.max_requests_per_minute, "--max-requests-per-minute")
    if overrides.max_tokens_per_minute is not None:
        tpm = _flag_rate(overrides.max_tokens_per_minute, "--max-tokens-per-minute")

    def pick(key: str) -> tuple[Any, str]:
        """The value and how to name it in an error: the flag if given, else the job's key."""
        flag = getattr(overrides, key)
        # `is not None`, not `or`: a flag given as 0 must be rejected, not silently ignored.
        if flag is not None:
            return flag, "--" + key.replace("_", "-")
        return table.get(key, getattr(defaults, key)), f"{where}: limits.{key}"

    concurrent, concurrent_label = pick("max_concurrent_requests")
    attempts, attempts_label = pick("max_attempts")
    timeout, timeout_label = pick("request_timeout")
    if not _is_number(timeout) or not timeout > 0 or not math.isfinite(timeout):
        raise ConfigError(
            f"{timeout_label} must be a positive number of seconds, got {describe_value(timeout)}"
        )
    max_cost, max_cost_label = pick("max_cost")
    if max_cost is not None and (
        not _is_number(max_cost) or not max_cost > 0 or not math.isfinite(max_cost)
    ):
        raise ConfigError(
            f"{max_cost_label} must be a positive number of US dollars, "
            f"got {describe_value(max_cost)}"
        )
    limiter, limiter_label = pick("limiter")
    if limiter is not None and (
        not isinstance(limiter, str) or limiter.partition("://")[0] not in _LIMITER_SCHEMES
    ):
        raise ConfigError(
            f"{limiter_label} must be a Redis URL such as redis://localhost:6379/0 "
            f"(redis://, rediss:// or unix://), got "
            f"{redact_url(limiter) if isinstance(limiter, str) else describe_value(limiter)}"
        )
    key, key_label = pick("limiter_key")
    if not isinstance(key, str) or not _LIMITER_KEY.fullmatch(key):
        raise ConfigError(
            f"{key_label} must be 1 to 64 letters, digits, '.', '_' or '-', "
            f"got {describe_value(key)}"
        )
    return Limits(
        max_requests_per_minute=rpm,
        max_tokens_per_minute=tpm,
        max_concurrent_requests=_positive_int(concurrent, concurrent_label),
        max_attempts=_positive_int(attempts, attempts_label),
        request_timeout=float(timeout),
        max_cost=None if max_cost is None else float(max_cost),
        limiter=limiter,
        limiter_key=key,
    )


def _rate(value: Any, label: str) -> Rate:
    """A per-minute rate from a file: a positive number, "auto", or "unlimited" (None)."""
    if value is None or value == UNLIMITED:
        return None
    if value == AUTO:
        return AUTO
    if not _is_number(value) or not value > 0 or not math.isfinite(value):
        raise ConfigError(
            f'{label} must be a positive number per minute, "auto" or "unlimited", got {value!r}'
        )
    return float(value)


def _flag_rate(value: float | str, flag: str) -> Rate:
    """A per-minute rate from a flag: a positive number, auto, or 0 for unlimited (None)."""
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return AUTO
        try:
            value = float(value)
        except ValueError:
            value = math.nan
    if value == 0:
        return None
    if not _is_number(value) or not value > 0 or not math.isfinite(value):
        raise ConfigError(
            f"{flag} must be a positive number per minute, auto (learn it from the "
            "provider), or 0 for unlimited"
        )
    return float(value)


def _check_keys(table: Mapping[str, Any], known: Sequence[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(_unknown(prefix + key, [prefix + k for k in known], where))


def _unknown(key: str, known: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
    return f"{where}: unknown key {key!r}{hint}"


def _table(value: Any, where: str, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string path")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_int(value: Any, label: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{label} must be a positive integer, got {value!r}")
    return value
