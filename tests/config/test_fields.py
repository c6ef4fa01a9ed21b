"""Each job value checks its own fields when it is made (config/fields.py): what it refuses,
how it says so, and that a job file and the flags are told the same, naming their own key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.config import CacheConfig, Job, JobOverrides, Limits, ModelEntry
from lm_deluge_cli.errors import ConfigError, InvalidValueError
from tests.job_files import MINIMAL, config_error, flags, write

ENTRY = (ModelEntry("mock:fast"),)


def _job(**fields: Any) -> Job:
    return Job(input="in.jsonl", output="out.jsonl", models=ENTRY, **fields)


# (how the value is made, the field it names, the rest of the message)
REFUSED: list[tuple[Any, str, str]] = [
    (lambda: Limits(max_attempts=0), "max_attempts", "must be a positive integer, got 0"),
    (
        lambda: Limits(max_attempts=2.5),  # type: ignore[arg-type]
        "max_attempts",
        "must be a positive integer, got 2.5",
    ),
    (lambda: Limits(max_attempts=True), "max_attempts", "must be a positive integer, got true"),
    (
        lambda: Limits(max_concurrent_requests=-4),
        "max_concurrent_requests",
        "must be a positive integer, got -4",
    ),
    (
        lambda: Limits(request_timeout=-1),
        "request_timeout",
        "must be a positive number of seconds, got -1",
    ),
    (
        lambda: Limits(request_timeout=math.inf),
        "request_timeout",
        "must be a positive number of seconds, got inf",
    ),
    (
        lambda: Limits(request_timeout="1m"),  # type: ignore[arg-type]
        "request_timeout",
        "must be a positive number of seconds, got the string '1m'",
    ),
    (lambda: Limits(max_cost=0), "max_cost", "must be a positive number of US dollars, got 0"),
    (
        lambda: Limits(max_requests_per_minute=-5),
        "max_requests_per_minute",
        'must be a positive number per minute, "auto" or None for unlimited, got -5',
    ),
    (
        lambda: Limits(max_tokens_per_minute=math.nan),
        "max_tokens_per_minute",
        'must be a positive number per minute, "auto" or None for unlimited, got nan',
    ),
    (
        lambda: Limits(limiter="localhost:6379"),
        "limiter",
        "must be a Redis URL such as redis://localhost:6379/0 (redis://, rediss:// or "
        "unix://), got localhost:6379",
    ),
    (
        lambda: Limits(limiter_key="a b"),
        "limiter_key",
        "must be 1 to 64 letters, digits, '.', '_' or '-', got the string 'a b'",
    ),
    (lambda: ModelEntry(""), "name", 'is required, e.g. "openai:gpt-4.1-mini"'),
    (lambda: ModelEntry("m", weight=0), "weight", "must be a positive number, got 0"),
    (
        lambda: ModelEntry("m", base_url=5),  # type: ignore[arg-type]
        "base_url",
        "must be a string, got 5",
    ),
    (
        lambda: ModelEntry("m", sampling={"temperature": 9}),
        "sampling.temperature",
        "must be a number from 0 to 2, got 9",
    ),
    (
        lambda: ModelEntry("m", sampling={"top_q": 1}),
        "sampling",
        "has unknown key 'top_q' (did you mean 'top_p'?)",
    ),
    (
        lambda: ModelEntry("m", max_tokens_per_minute=0),
        "max_tokens_per_minute",
        'must be a positive number per minute, "auto" or None for unlimited, got 0',
    ),
    (
        lambda: ModelEntry("bedrock:m", region="Frankfurt"),
        "region",
        "must be an AWS region such as \"us-east-1\", got the string 'Frankfurt'",
    ),
    (
        lambda: CacheConfig(read_only=True, refresh=True),
        "read_only",
        "and refresh cannot both be set",
    ),
    (
        lambda: CacheConfig(enabled=1),  # type: ignore[arg-type]
        "enabled",
        "must be true or false, got 1",
    ),
    (
        lambda: CacheConfig(location=""),
        "location",
        "must be a directory, a .sqlite file or a URL, got an empty string",
    ),
    (lambda: CacheConfig(ttl_s=0), "ttl_s", "must be a positive number of seconds, got 0"),
    (
        lambda: CacheConfig(backend=42),  # type: ignore[arg-type]
        "backend",
        "must be an object with async get and set methods, such as MemoryCache(); got int",
    ),
    (
        lambda: Job(input="-", output="-", models=()),
        "models",
        'must name at least one model, e.g. "openai:gpt-4.1-mini"',
    ),
    (
        lambda: _job(fsync="sometimes"),
        "fsync",
        "must be one of none, end, always, got the string 'sometimes'",
    ),
    (
        lambda: _job(retry_other_model="yes"),
        "retry_other_model",
        "must be true or false, got the string 'yes'",
    ),
    (lambda: _job(dedupe=0), "dedupe", "must be true or false, got 0"),
    (lambda: _job(max_rounds=0), "max_rounds", "must be a positive integer, got 0"),
    (
        lambda: _job(prompt_cache_warmup_s=-1),
        "prompt_cache_warmup_s",
        "must be a number of seconds (0: no warm-up), got -1",
    ),
]


@pytest.mark.parametrize(("make", "field", "problem"), REFUSED)
def test_a_value_refuses_a_bad_field_naming_it(make: Any, field: str, problem: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        make()
    assert (info.value.field, info.value.problem) == (field, problem)
    assert str(info.value) == f"{field} {problem}"
    # A usage error like any other bad value in a job: exit code 2 at the CLI's edge.
    assert isinstance(info.value, ConfigError)


def test_a_limiter_url_refused_never_shows_its_password() -> None:
    with pytest.raises(InvalidValueError) as info:
        Limits(limiter="http://user:s3cret-pw@redis.example:6379/0")
    assert "s3cret-pw" not in str(info.value)


def test_a_job_with_a_bad_registry_entry_is_refused_when_made() -> None:
    with pytest.raises(ConfigError, match="job: model entry 1: unknown key 'name'"):
        _job(registry=({"name": "x"},))


def test_values_keep_their_fields_normalised() -> None:
    limits = Limits(max_requests_per_minute=60, max_tokens_per_minute="auto", request_timeout=5)
    assert limits.max_requests_per_minute == 60.0 and isinstance(
        limits.max_requests_per_minute, float
    )
    assert (limits.max_tokens_per_minute, limits.request_timeout) == ("auto", 5.0)
    assert isinstance(Limits(max_cost=3).max_cost, float)
    entry = ModelEntry("m", weight=3, sampling={"temperature": 1, "stop": "END"})
    assert isinstance(entry.weight, float)
    assert entry.sampling == {"temperature": 1.0, "stop": ("END",)}
    assert _job(prompt_cache_warmup_s=0).prompt_cache_warmup_s == 0.0
    assert CacheConfig(backend=MemoryCache()).backend is not None


# --- one check, three sources: Python names the field, a file its key, a flag itself -----


# (Limits field, a value it refuses, the same value as TOML)
LIMIT_CASES = [
    ("max_attempts", 0, "0"),
    ("max_concurrent_requests", 1.5, "1.5"),
    ("request_timeout", -1.0, "-1.0"),
    ("max_cost", math.inf, "inf"),
    ("limiter_key", "a b", '"a b"'),
]


@pytest.mark.parametrize(("field", "value", "toml"), LIMIT_CASES)
def test_limits_say_the_same_to_python_a_job_file_and_a_flag(
    tmp_path: Path, field: str, value: Any, toml: str
) -> None:
    with pytest.raises(InvalidValueError) as info:
        Limits(**{field: value})
    problem = info.value.problem
    job_file = write(tmp_path, MINIMAL + f"[limits]\n{field} = {toml}\n")
    assert config_error(job_file) == f"{job_file}: limits.{field} {problem}"
    flag = "--" + field.replace("_", "-")
    assert config_error(None, flags(**{field: value})) == f"{flag} {problem}"


def test_a_rate_says_unlimited_as_each_source_writes_it(tmp_path: Path) -> None:
    expected = 'must be a positive number per minute, "auto" or {}, got -5'
    with pytest.raises(InvalidValueError) as info:
        Limits(max_requests_per_minute=-5)
    assert info.value.problem == expected.format("None for unlimited")
    job_file = write(tmp_path, MINIMAL + "[limits]\nmax_requests_per_minute = -5\n")
    assert config_error(job_file) == (
        f"{job_file}: limits.max_requests_per_minute " + expected.format('"unlimited"')
    )
    # A flag's text is read as a number first.
    assert config_error(None, flags(max_requests_per_minute="-5")) == (
        "--max-requests-per-minute " + expected.format("0 for unlimited") + ".0"
    )


def test_a_flag_is_named_even_where_the_file_set_the_same_field(tmp_path: Path) -> None:
    job_file = write(tmp_path, MINIMAL + "[limits]\nmax_attempts = 3\n[cache]\nttl = 60\n")
    assert config_error(job_file, JobOverrides(max_attempts=0)).startswith("--max-attempts ")
    assert config_error(job_file, JobOverrides(cache_ttl=-1.0)).startswith("--cache-ttl ")
    # And the file's key where the flag given was another.
    bad_file = write(tmp_path, MINIMAL + "[limits]\nmax_attempts = 0\n")
    message = config_error(bad_file, JobOverrides(max_cost=1.0))
    assert message.startswith(f"{bad_file}: limits.max_attempts ")


@pytest.mark.parametrize(
    ("top", "overrides", "label", "problem"),
    [
        ('fsync = "sometimes"\n', None, "fsync", "must be one of none, end, always"),
        (
            "",
            JobOverrides(fsync="sometimes"),
            "--fsync",
            "must be one of none, end, always",
        ),
        ("dedupe = 1\n", None, "dedupe", "must be true or false, got 1"),
        (
            "prompt_cache_warmup = -1\n",
            None,
            "prompt_cache_warmup",
            "must be a number of seconds (0: no warm-up), got -1",
        ),
        (
            "",
            JobOverrides(prompt_cache_warmup=-1.0),
            "--prompt-cache-warmup",
            "must be a number of seconds (0: no warm-up), got -1.0",
        ),
        ("[cache]\nttl = 0\n", None, "cache.ttl", "must be a positive number of seconds, got 0"),
        ("[cache]\npath = ''\n", None, "cache.path", "must be a directory, a .sqlite file or a"),
        ("", JobOverrides(cache=""), "--cache", "must be a directory, a .sqlite file or a URL"),
    ],
)
def test_job_and_cache_fields_are_named_as_the_file_or_flag_gave_them(
    tmp_path: Path, top: str, overrides: JobOverrides | None, label: str, problem: str
) -> None:
    # [cache] goes last: the table runs to the end of the file.
    text = top + MINIMAL if not top.startswith("[") else MINIMAL + top
    job_file = write(tmp_path, text)
    message = config_error(job_file, overrides)
    prefix = label if label.startswith("--") else f"{job_file}: {label}"
    assert message.startswith(f"{prefix} {problem}")
