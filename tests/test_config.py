"""Job file + flags → Job: defaults, overrides, paths, and an error naming each bad key."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.config import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_REQUESTS_PER_MINUTE,
    DEFAULT_MAX_TOKENS_PER_MINUTE,
    DEFAULT_REQUEST_TIMEOUT_S,
    CacheConfig,
    Job,
    JobOverrides,
    Limits,
    ModelEntry,
    load_job,
    parse_model_flag,
)
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.shard import Shard
from lm_deluge_cli.types import PromptCache, RequestDefaults, SamplingParams

from .job_files import MINIMAL, config_error, flags, write

REPO = Path(__file__).resolve().parent.parent

FULL = """
input = "data/prompts.jsonl"
output = "results/out.jsonl"
fsync = "always"
retry_other_model = true
shard = "0/2"
tool_choice = "auto"
prompt_cache = "system"
prompt_cache_ttl = "5m"
dedupe = true

[[tools]]
name = "get_weather"
description = "The weather in a city."
parameters = { type = "object", properties = { city = { type = "string" } }, required = ["city"] }

[[models]]
name = "openai:gpt-4.1-mini"
weight = 3

[[models]]
name = "openai:my-llama"
base_url = "http://127.0.0.1:8080/v1"
api_key_env = ""
weight = 0.5
max_requests_per_minute = 600
max_tokens_per_minute = "unlimited"
mock = { latency_s = 0.2 }
[models.sampling]
temperature = 0.2
logprobs = true
top_logprobs = 3

[limits]
max_requests_per_minute = 120
max_tokens_per_minute = 50000
max_concurrent_requests = 8
max_attempts = 2
request_timeout = 12.5
max_cost = 5
limiter = "redis://127.0.0.1:6379/1"
limiter_key = "team-a"

[sampling]
temperature = 0.7
top_p = 0.9
max_new_tokens = 64
json_mode = true
reasoning_effort = "high"
logprobs = false
samples = 2

[cache]
path = "answers.sqlite"
ttl = 3600
"""


# --- Whole jobs ------------------------------------------------------------------------


def test_full_job_file(tmp_path: Path) -> None:
    job = load_job(write(tmp_path / "jobs", FULL))
    folder = (tmp_path / "jobs").resolve()
    assert job.input == str(folder / "data" / "prompts.jsonl")
    assert job.output == str(folder / "results" / "out.jsonl")
    assert job.fsync == "always"
    assert job.retry_other_model is True
    assert job.job_file == tmp_path / "jobs" / "job.toml"
    assert job.models == (
        ModelEntry(name="openai:gpt-4.1-mini", weight=3.0),
        ModelEntry(
            name="openai:my-llama",
            weight=0.5,
            base_url="http://127.0.0.1:8080/v1",
            api_key_env="",
            sampling={"temperature": 0.2, "logprobs": True, "top_logprobs": 3},
            max_requests_per_minute=600.0,
            max_tokens_per_minute=None,
            mock={"latency_s": 0.2},
        ),
    )
    assert job.limits == Limits(
        max_requests_per_minute=120.0,
        max_tokens_per_minute=50_000.0,
        max_concurrent_requests=8,
        max_attempts=2,
        request_timeout=12.5,
        max_cost=5.0,
        limiter="redis://127.0.0.1:6379/1",
        limiter_key="team-a",
    )
    assert job.sampling == SamplingParams(
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=64,
        json_mode=True,
        reasoning_effort="high",
        logprobs=False,
        top_logprobs=None,
        samples=2,
    )
    # A cache path in the file is relative to the file.
    assert job.cache == CacheConfig(location=str(folder / "answers.sqlite"), ttl_s=3600.0)
    assert job.shard == Shard(0, 2)
    weather = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": weather,
        },
    }
    assert job.requests == RequestDefaults((tool,), "auto")
    assert job.prompt_cache == PromptCache("system", "5m")
    assert job.dedupe is True


def test_minimal_job_file_takes_every_default(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, MINIMAL))
    assert job.models == (ModelEntry(name="openai:gpt-4.1-mini"),)
    assert job.limits == Limits(
        max_requests_per_minute=DEFAULT_MAX_REQUESTS_PER_MINUTE,
        max_tokens_per_minute=DEFAULT_MAX_TOKENS_PER_MINUTE,
        max_concurrent_requests=DEFAULT_MAX_CONCURRENT_REQUESTS,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        request_timeout=DEFAULT_REQUEST_TIMEOUT_S,
    )
    assert job.sampling == SamplingParams()
    assert job.fsync == "end"
    assert job.retry_other_model is False
    assert job.requests == RequestDefaults()
    assert (job.prompt_cache, job.dedupe) == (None, True)


def test_example_job_file_loads_with_paths_against_its_folder() -> None:
    example = REPO / "configs" / "job.example.toml"
    job = load_job(example)
    assert job.input == str(example.parent / "prompts.jsonl")
    assert job.output == str(example.parent / "results.jsonl")
    assert [(m.name, m.weight) for m in job.models] == [
        ("openai:gpt-4.1-mini", 3.0),
        ("openai:my-llama", 1.0),
    ]
    local = job.models[1]
    assert local.base_url == "http://127.0.0.1:8080/v1"
    assert local.api_key_env == "LOCAL_LLM_KEY"
    assert local.max_requests_per_minute == 600.0
    assert local.sampling == {"temperature": 0.2}
    assert job.sampling.reasoning_effort == "low"
    assert job.limits.max_tokens_per_minute == 100_000.0


def test_openai_compatible_example_loads() -> None:
    job = load_job(REPO / "configs" / "openai_compatible.toml", JobOverrides(input="-", output="-"))
    assert job.models[1].api_key_env == ""
    assert job.models[1].weight == 2.0


def test_tools_example_loads_with_its_tools() -> None:
    job = load_job(REPO / "configs" / "tools.example.toml", JobOverrides(input="-", output="-"))
    assert [t["function"]["name"] for t in job.requests.tools] == [
        "get_weather",
        "convert_currency",
    ]
    assert job.requests.tool_choice == "auto"
    assert job.models[0].base_url == "http://127.0.0.1:8000/v1"


def test_embed_example_loads_and_names_a_real_input() -> None:
    job = load_job(REPO / "configs" / "embed.example.toml")
    assert [m.name for m in job.models] == ["openai:text-embedding-3-small"]
    assert Path(job.input).is_file()
    assert job.limits.max_tokens_per_minute == 1_000_000.0


def test_quickstart_sample_job_loads() -> None:
    job_file = REPO / "sample_jobs" / "quickstart" / "job.toml"
    job = load_job(job_file)
    assert job.input == str(job_file.parent / "prompts.jsonl")
    assert Path(job.input).is_file()
    assert [(m.name, m.weight) for m in job.models] == [("mock:standard", 3.0), ("mock:fast", 1.0)]
    assert job.limits.max_concurrent_requests == 16
    assert job.sampling.max_new_tokens == 128


def test_flags_only_job_keeps_paths_as_given() -> None:
    job = load_job(None, flags(models=["openai:gpt-4.1-mini=2", "mock:fast"]))
    assert job == Job(
        input="in.jsonl",
        output="out.jsonl",
        models=(ModelEntry("openai:gpt-4.1-mini", 2.0), ModelEntry("mock:fast", 1.0)),
        job_file=None,
    )


@pytest.mark.parametrize(("field", "value"), [("input", "-"), ("output", "-")])
def test_stdio_dash_is_never_resolved(tmp_path: Path, field: str, value: str) -> None:
    text = MINIMAL.replace('"in.jsonl"' if field == "input" else '"out.jsonl"', '"-"')
    job = load_job(write(tmp_path, text))
    assert getattr(job, field) == value


def test_relative_paths_resolve_against_the_job_file_not_the_cwd(tmp_path: Path) -> None:
    # The autouse fixture runs each test in tmp_path; put the job somewhere else.
    job = load_job(write(tmp_path / "elsewhere" / "deep", MINIMAL))
    folder = (tmp_path / "elsewhere" / "deep").resolve()
    assert job.input == str(folder / "in.jsonl")
    assert job.output == str(folder / "out.jsonl")


def test_absolute_paths_in_job_file_stay_absolute(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "in.jsonl"
    job = load_job(write(tmp_path / "jobs", MINIMAL.replace('"in.jsonl"', f'"{target}"')))
    assert job.input == str(target)


def test_path_flags_beat_the_file_and_stay_relative_to_the_cwd(tmp_path: Path) -> None:
    job = load_job(write(tmp_path / "jobs", MINIMAL), JobOverrides(input="mine.jsonl", output="-"))
    assert job.input == "mine.jsonl"
    assert job.output == "-"


# --- Flag overrides --------------------------------------------------------------------


# (JobOverrides field, value, where it lands in the Job, expected value there)
def _named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


OVERRIDES: list[tuple[str, Any, str, Any]] = [
    ("input", "flag-in.jsonl", "input", "flag-in.jsonl"),
    ("output", "flag-out.jsonl", "output", "flag-out.jsonl"),
    ("models", ["mock:fast=2"], "models", (ModelEntry("mock:fast", 2.0),)),
    ("max_requests_per_minute", 30.0, "limits.max_requests_per_minute", 30.0),
    ("max_requests_per_minute", 0.0, "limits.max_requests_per_minute", None),
    ("max_requests_per_minute", "auto", "limits.max_requests_per_minute", "auto"),
    ("max_requests_per_minute", "0", "limits.max_requests_per_minute", None),
    ("max_requests_per_minute", "45.5", "limits.max_requests_per_minute", 45.5),
    ("max_tokens_per_minute", 5000.0, "limits.max_tokens_per_minute", 5000.0),
    ("max_tokens_per_minute", 0.0, "limits.max_tokens_per_minute", None),
    ("max_tokens_per_minute", "AUTO", "limits.max_tokens_per_minute", "auto"),
    ("max_concurrent_requests", 3, "limits.max_concurrent_requests", 3),
    ("max_attempts", 9, "limits.max_attempts", 9),
    ("request_timeout", 1.5, "limits.request_timeout", 1.5),
    ("max_cost", 2.5, "limits.max_cost", 2.5),
    ("max_new_tokens", 7, "sampling.max_new_tokens", 7),
    ("temperature", 1.25, "sampling.temperature", 1.25),
    ("temperature", 0.0, "sampling.temperature", 0.0),
    ("top_p", 0.5, "sampling.top_p", 0.5),
    ("json_mode", False, "sampling.json_mode", False),
    ("reasoning_effort", "minimal", "sampling.reasoning_effort", "minimal"),
    ("logprobs", True, "sampling.logprobs", True),
    ("top_logprobs", 4, "sampling.top_logprobs", 4),
    ("retry_other_model", False, "retry_other_model", False),
    ("fsync", "none", "fsync", "none"),
    ("cache", "redis://127.0.0.1:6379/0", "cache.location", "redis://127.0.0.1:6379/0"),
    ("no_cache", True, "cache.enabled", False),
    ("cache_read_only", True, "cache.read_only", True),
    ("refresh_cache", True, "cache.refresh", True),
    ("cache_ttl", 60.0, "cache.ttl_s", 60.0),
    ("shard", "1/3", "shard", Shard(1, 3)),
    ("limiter", "redis://10.0.0.2:6379/0", "limits.limiter", "redis://10.0.0.2:6379/0"),
    ("limiter_key", "nightly", "limits.limiter_key", "nightly"),
    ("files_root", "/", "files_root", "/"),
    ("samples", 3, "sampling.samples", 3),
    ("tool_choice", "get_weather", "requests.tool_choice", _named("get_weather")),
    ("prompt_cache", "last_user", "prompt_cache.placement", "last_user"),
    ("prompt_cache_ttl", "1h", "prompt_cache.ttl", "1h"),
    ("no_dedupe", True, "dedupe", False),
    # Any Python file does for the job; the tools are loaded when the run starts.
    ("tools_module", __file__, "tools_module", __file__),
    ("prompt_cache_warmup", 5.0, "prompt_cache_warmup_s", 5.0),
]


def _get(job: Job, dotted: str) -> Any:
    value: Any = job
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("field", "value", "where", "expected"), OVERRIDES)
def test_each_flag_overrides_the_job_file(
    tmp_path: Path, field: str, value: Any, where: str, expected: Any
) -> None:
    job_file = write(tmp_path, FULL)
    before = load_job(job_file)
    after = load_job(job_file, JobOverrides(**{field: value}))
    assert _get(after, where) == expected
    # The file said something else, so the flag really did the work.
    assert _get(before, where) != expected


def test_max_rounds_flag_overrides_the_job_file(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def f() -> None: ...\n")
    job_file = write(tmp_path, 'tools_module = "tools.py"\nmax_rounds = 4\n' + FULL)
    assert load_job(job_file).max_rounds == 4
    assert load_job(job_file, JobOverrides(max_rounds=2)).max_rounds == 2


def test_every_override_field_is_covered() -> None:
    covered = {field for field, *_ in OVERRIDES} | {"max_rounds"}
    assert covered == {f.name for f in fields(JobOverrides)}


def test_sampling_flags_keep_the_rest_of_the_file_sampling(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, FULL), JobOverrides(temperature=0.1))
    assert job.sampling.temperature == 0.1
    assert job.sampling.top_p == 0.9
    assert job.sampling.max_new_tokens == 64


# --- -m NAME[=WEIGHT] ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "weight"),
    [
        ("openai:gpt-4.1-mini", "openai:gpt-4.1-mini", 1.0),
        ("openai:gpt-4.1-mini=3", "openai:gpt-4.1-mini", 3.0),
        ("mock:fast=0.25", "mock:fast", 0.25),
        ("  gpt-4o  =2", "gpt-4o", 2.0),
        ("o3=1e1", "o3", 10.0),
    ],
)
def test_parse_model_flag(value: str, name: str, weight: float) -> None:
    assert parse_model_flag(value) == ModelEntry(name=name, weight=weight)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "give a model name"),
        ("   ", "give a model name"),
        ("=2", "give a model name"),
        ("gpt-4o=", "must be a number"),
        ("gpt-4o=two", "must be a number"),
        ("gpt-4o=0", "weight must be a positive number"),
        ("gpt-4o=-1", "weight must be a positive number"),
        ("gpt-4o=nan", "weight must be a positive number"),
        ("gpt-4o=inf", "weight must be a positive number"),
    ],
)
def test_parse_model_flag_errors(value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_flag(value)
    assert fragment in str(info.value)
    assert repr(value) in str(info.value)


def test_a_dry_run_needs_no_output() -> None:
    overrides = JobOverrides(input="in.jsonl", models=["mock:fast"])
    assert "no output" in config_error(None, overrides)
    assert load_job(None, overrides, need_output=False).output == ""


# --- Bad input: a ConfigError that names the key ----------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        # Unknown keys, with a did-you-mean where one is close.
        (
            "[limits]\nmax_attempt = 3\n",
            ["unknown key 'limits.max_attempt'", "did you mean 'limits.max_attempts'"],
        ),
        ("[sampling]\ntemprature = 1\n", ["unknown key 'temprature'", "'temperature'"]),
        ("[sampling]\nseed = 1\n", ["unknown key 'seed'", "known keys:", "max_new_tokens"]),
        (
            "wieght = 2\n",
            ["unknown key 'models[0].wieght'", "did you mean 'models[0].weight'"],
        ),
        (
            "[models.sampling]\ntop_q = 1\n",
            ["models[0].sampling", "unknown key 'top_q'", "did you mean 'top_p'"],
        ),
        # Wrong types.
        ('weight = "2"\n', ["models[0].weight", "positive number"]),
        ("base_url = 5\n", ["models[0].base_url", "must be a string"]),
        ("api_key_env = false\n", ["models[0].api_key_env", "must be a string"]),
        ("mock = 3\n", ["models[0].mock", "must be a table"]),
        ("region = 1\n", ["models[0].region", '"us-east-1"', "got 1"]),
        ('region = "Frankfurt"\n', ["models[0].region", "AWS region", "'Frankfurt'"]),
        ("sampling = 3\n", ["models[0].sampling", "must be a table"]),
        ("[limits]\nmax_attempts = 2.5\n", ["limits.max_attempts", "positive integer", "2.5"]),
        (
            '[limits]\nmax_concurrent_requests = "8"\n',
            ["limits.max_concurrent_requests", "positive integer"],
        ),
        ('[limits]\nrequest_timeout = "1m"\n', ["limits.request_timeout", "'1m'"]),
        ("[sampling]\njson_mode = 1\n", ["sampling.json_mode", "true or false"]),
        ('[sampling]\nlogprobs = "yes"\n', ["sampling.logprobs", "true or false"]),
        ("[sampling]\nmax_new_tokens = 1.5\n", ["sampling.max_new_tokens", "positive integer"]),
        ("[sampling]\ntop_logprobs = true\n", ["sampling.top_logprobs", "0 to 20"]),
        # Out of range.
        ("weight = 0\n", ["models[0].weight", "positive number"]),
        ("weight = -1\n", ["models[0].weight", "positive number"]),
        ("weight = inf\n", ["models[0].weight", "positive number"]),
        ("[limits]\nmax_attempts = 0\n", ["limits.max_attempts", "positive integer"]),
        ("[limits]\nmax_concurrent_requests = -4\n", ["limits.max_concurrent_requests"]),
        ("[limits]\nrequest_timeout = 0\n", ["limits.request_timeout", "positive number"]),
        ("[limits]\nrequest_timeout = inf\n", ["limits.request_timeout", "inf"]),
        ("[sampling]\ntemperature = 2.5\n", ["sampling.temperature", "0 to 2", "2.5"]),
        ("[sampling]\ntemperature = -0.1\n", ["sampling.temperature", "0 to 2"]),
        ("[sampling]\ntemperature = nan\n", ["sampling.temperature", "0 to 2"]),
        ("[sampling]\ntop_p = 1.5\n", ["sampling.top_p", "0 to 1"]),
        ("[sampling]\nmax_new_tokens = 0\n", ["sampling.max_new_tokens", "positive integer"]),
        ("[sampling]\ntop_logprobs = 21\n", ["sampling.top_logprobs", "0 to 20"]),
        (
            '[sampling]\nreasoning_effort = "max"\n',
            ["sampling.reasoning_effort", "minimal, low, medium, high", "'max'"],
        ),
        ("[models.sampling]\ntemperature = 9\n", ["models[0].sampling.temperature", "0 to 2"]),
        ('[sampling]\nstop = ["a", "b", "c", "d", "e"]\n', ["sampling.stop", "up to 4"]),
        ('[sampling]\nstop = ["a", ""]\n', ["sampling.stop", "non-empty"]),
        ("[sampling]\nstop = 3\n", ["sampling.stop", "got 3"]),
        ("[cache]\nttl = -1\n", ["cache.ttl"]),
        ('[limits]\nlimiter = "localhost:6379"\n', ["limits.limiter", "redis://"]),
        ("[limits]\nlimiter = 6379\n", ["limits.limiter", "Redis URL"]),
        ('[limits]\nlimiter_key = "a b"\n', ["limits.limiter_key", "letters, digits"]),
        ("[cache]\npaht = 'x'\n", ["unknown key 'cache.paht'", "did you mean 'cache.path'"]),
        ("[cache]\nenabled = 1\n", ["cache.enabled", "true or false"]),
        ("[cache]\nttl = 0\n", ["cache.ttl", "positive number of seconds"]),
        ("[cache]\nttl = '1d'\n", ["cache.ttl", "'1d'"]),
        ("[cache]\npath = ''\n", ["cache.path", "a directory, a .sqlite file or a URL"]),
        ("[cache]\nread_only = true\nrefresh = true\n", ["read_only and refresh"]),
    ],
)
def test_bad_model_limits_and_sampling_values(
    tmp_path: Path, extra: str, fragments: list[str]
) -> None:
    # MINIMAL ends inside the [[models]] table, so bare keys land in models[0].
    message = config_error(write(tmp_path, MINIMAL + extra))
    for fragment in fragments:
        assert fragment in message
    assert str(tmp_path / "job.toml") in message


# Top-level input, output and one model, as inline TOML.
M = 'input = "i"\noutput = "o"\nmodels = [{ name = "m" }]\n'


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        # Unknown top-level keys, with a did-you-mean where one is close.
        ('input = "i"\nouput = "o"\n', ["unknown key 'ouput'", "did you mean 'output'"]),
        ('input = "i"\nzzz = 1\n', ["unknown key 'zzz'", "known keys:", "retry_other_model"]),
        ('input = 3\noutput = "o"\n', ["input must be a string"]),
        (M + 'fsync = "sometimes"\n', ["fsync", "none, end, always"]),
        (M + "fsync = 1\n", ["fsync", "none, end, always"]),
        (M + 'retry_other_model = "yes"\n', ["retry_other_model"]),
        (M + "limits = 5\n", ["limits must be a table"]),
        (M + 'sampling = "hot"\n', ["sampling must be a table"]),
        ('input = "i"\noutput = "o"\nmodels = "gpt-4o"\n', ["models must be a list"]),
        ('input = "i"\noutput = "o"\n[models]\nname = "x"\n', ["models must be a list"]),
        ('input = "i"\noutput = "o"\nmodels = [3]\n', ["models[0] must be a table"]),
        ('input = "i"\noutput = "o"\n[[models]]\nweight = 2\n', ["models[0].name is required"]),
        ('input = "i"\noutput = "o"\n[[models]]\nname = ""\n', ["models[0].name is required"]),
        (
            'input = "i"\noutput = "o"\n[[models]]\nname = "a"\n[[models]]\nname = 7\n',
            ["models[1].name is required"],
        ),
    ],
)
def test_bad_top_level_values(tmp_path: Path, text: str, fragments: list[str]) -> None:
    message = config_error(write(tmp_path, text))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "overrides", "fragments"),
    [
        ('output = "o"\n[[models]]\nname = "m"\n', None, ["no input", "-i FILE"]),
        ('input = ""\noutput = "o"\n[[models]]\nname = "m"\n', None, ["no input"]),
        ('input = "i"\n[[models]]\nname = "m"\n', None, ["no output", "-o FILE"]),
        ('input = "i"\noutput = "o"\n', None, ["no model", "-m PROVIDER:MODEL", "[[models]]"]),
        ('input = "i"\noutput = "o"\nmodels = []\n', None, ["no model"]),
        # A missing piece given as a flag is enough.
        ('input = "i"\noutput = "o"\n', JobOverrides(models=["mock:fast"]), []),
        ('output = "o"\n[[models]]\nname = "m"\n', JobOverrides(input="-"), []),
    ],
)
def test_missing_input_output_models(
    tmp_path: Path, text: str, overrides: JobOverrides | None, fragments: list[str]
) -> None:
    job_file = write(tmp_path, text)
    if not fragments:
        assert load_job(job_file, overrides).models
        return
    message = config_error(job_file, overrides)
    for fragment in fragments:
        assert fragment in message


def test_flags_only_without_input_output_or_model() -> None:
    assert "no input" in config_error(None, JobOverrides(output="o", models=["m"]))
    assert "no output" in config_error(None, JobOverrides(input="i", models=["m"]))
    assert "no model" in config_error(None, JobOverrides(input="i", output="o"))
