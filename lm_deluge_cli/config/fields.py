"""What a job is: its values as frozen dataclasses, and every default as a named constant.

Each value checks its own fields when it is made (`InvalidValueError` names the field), so a job
file, the flags and the Python API get the same checks; the job file's loader and the
commands only say where a refused field came from.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from lm_deluge_cli.cache.base import Cache
from lm_deluge_cli.config.checks import (
    check_bool,
    check_number,
    check_positive_int,
    check_sampling,
    is_number,
)
from lm_deluge_cli.errors import InvalidValueError
from lm_deluge_cli.io.shard import Shard
from lm_deluge_cli.providers.registry import Registry, load_registry, parse_user_models
from lm_deluge_cli.redaction import redact_url
from lm_deluge_cli.sampling import describe_value
from lm_deluge_cli.types import PromptCache, RequestDefaults, SamplingParams

__all__ = [
    "AUTO",
    "AUTO_FALLBACK_REQUESTS_PER_MINUTE",
    "AUTO_FALLBACK_TOKENS_PER_MINUTE",
    "DEFAULT_FSYNC",
    "DEFAULT_LIMITER_KEY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_REQUESTS_PER_MINUTE",
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MAX_TOKENS_PER_MINUTE",
    "DEFAULT_PROMPT_CACHE_WARMUP_S",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "FSYNC_POLICIES",
    "STDIO",
    "UNLIMITED",
    "CacheConfig",
    "Job",
    "JobOverrides",
    "Limits",
    "ModelEntry",
    "Rate",
    "check_rate",
    "check_warmup",
    "rate_problem",
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

_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_LIMITER_SCHEMES = ("redis", "rediss", "unix")
_LIMITER_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_rate(value: Any, field: str) -> Rate:
    """A per-minute rate: a positive number (as a float), AUTO, or None (no limit)."""
    if value is None:
        return None
    if value == AUTO:
        return AUTO
    if not is_number(value) or not math.isfinite(value) or not value > 0:
        raise InvalidValueError(field, rate_problem(value, "None for unlimited"))
    return float(value)


def rate_problem(value: Any, unlimited: str) -> str:
    """What a bad rate is told, `unlimited` saying how its source writes "no limit" (a job
    file "unlimited", a flag 0, Python None)."""
    return (
        f'must be a positive number per minute, "auto" or {unlimited}, got {describe_value(value)}'
    )


def check_warmup(value: Any, field: str) -> float:
    """Seconds a request waits for the first one sharing its cached prefix: from 0 (none).
    `Job` checks its own; `LLMClient`, which holds one without a Job, checks it here."""
    return check_number(value, field, "a number of seconds (0: no warm-up)", zero=True)


def _set(value: Any, name: str, checked: Any) -> None:
    """Store a field's checked (normalised) form in a frozen value, from its __post_init__."""
    object.__setattr__(value, name, checked)


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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidValueError("name", 'is required, e.g. "openai:gpt-4.1-mini"')
        _set(self, "weight", check_number(self.weight, "weight", "a positive number"))
        for name in ("base_url", "api_key_env"):
            text = getattr(self, name)
            if text is not None and not isinstance(text, str):
                raise InvalidValueError(name, f"must be a string, got {describe_value(text)}")
        if not isinstance(self.sampling, Mapping):
            raise InvalidValueError(
                "sampling",
                f"must be a mapping of sampling fields, got {describe_value(self.sampling)}",
            )
        _set(self, "sampling", check_sampling(self.sampling, "sampling"))
        for name in ("max_requests_per_minute", "max_tokens_per_minute"):
            _set(self, name, check_rate(getattr(self, name), name))
        region = self.region
        if region is not None and not (isinstance(region, str) and _AWS_REGION.fullmatch(region)):
            raise InvalidValueError(
                "region", f'must be an AWS region such as "us-east-1", got {describe_value(region)}'
            )


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

    def __post_init__(self) -> None:
        for name in ("max_requests_per_minute", "max_tokens_per_minute"):
            _set(self, name, check_rate(getattr(self, name), name))
        for name in ("max_concurrent_requests", "max_attempts"):
            check_positive_int(getattr(self, name), name)
        timeout = check_number(
            self.request_timeout, "request_timeout", "a positive number of seconds"
        )
        _set(self, "request_timeout", timeout)
        if self.max_cost is not None:
            cost = check_number(self.max_cost, "max_cost", "a positive number of US dollars")
            _set(self, "max_cost", cost)
        limiter = self.limiter
        if limiter is not None and (
            not isinstance(limiter, str) or limiter.partition("://")[0] not in _LIMITER_SCHEMES
        ):
            shown = redact_url(limiter) if isinstance(limiter, str) else describe_value(limiter)
            raise InvalidValueError(
                "limiter",
                "must be a Redis URL such as redis://localhost:6379/0 (redis://, rediss:// or "
                f"unix://), got {shown}",
            )
        key = self.limiter_key
        if not isinstance(key, str) or not _LIMITER_KEY.fullmatch(key):
            raise InvalidValueError(
                "limiter_key",
                f"must be 1 to 64 letters, digits, '.', '_' or '-', got {describe_value(key)}",
            )


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

    def __post_init__(self) -> None:
        for name in ("enabled", "read_only", "refresh"):
            check_bool(getattr(self, name), name)
        if self.read_only and self.refresh:
            raise InvalidValueError("read_only", "and refresh cannot both be set")
        if self.location is not None and (not isinstance(self.location, str) or not self.location):
            raise InvalidValueError(
                "location",
                "must be a directory, a .sqlite file or a URL, "
                f"got {describe_value(self.location)}",
            )
        if self.ttl_s is not None:
            _set(self, "ttl_s", check_number(self.ttl_s, "ttl_s", "a positive number of seconds"))
        backend = self.backend
        if backend is not None and not all(
            callable(getattr(backend, name, None)) for name in ("get", "set")
        ):
            raise InvalidValueError(
                "backend",
                "must be an object with async get and set methods, such as MemoryCache(); "
                f"got {type(backend).__name__}",
            )

    @classmethod
    def given(cls, cache: str | os.PathLike[str] | Cache | None) -> CacheConfig:
        """The cache a Python caller names with one `cache` argument: None (no cache), a
        location (a directory, a .sqlite file, leveldb:…, redis://…, memory:), opened and
        closed by each run (so a ``memory:`` cache lasts one run), or an open Cache object,
        such as ``MemoryCache()``, shared by every run given it and never closed by them.
        An error names the argument (``cache must be …``)."""
        try:
            if cache is None:
                return cls(enabled=False)
            if isinstance(cache, str | os.PathLike):
                return cls(location=os.fspath(cache))
            return cls(backend=cache)
        except InvalidValueError as exc:
            raise exc.at("cache") from None


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

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidValueError(
                "models", 'must name at least one model, e.g. "openai:gpt-4.1-mini"'
            )
        check_bool(self.retry_other_model, "retry_other_model")
        if self.fsync not in FSYNC_POLICIES:
            raise InvalidValueError(
                "fsync",
                f"must be one of {', '.join(FSYNC_POLICIES)}, got {describe_value(self.fsync)}",
            )
        check_bool(self.dedupe, "dedupe")
        warmup = check_warmup(self.prompt_cache_warmup_s, "prompt_cache_warmup_s")
        _set(self, "prompt_cache_warmup_s", warmup)
        check_positive_int(self.max_rounds, "max_rounds")
        if self.registry:
            # Its entries are checked by building it: a bad one is an error now, not mid-run.
            self.model_registry()

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
