"""Job values field by field: flags out of range, unreadable files, sampling values, stop
sequences, schema files, and the newer keys (region, shard, limiter, files_root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.config import JobOverrides, load_job, validate_sampling
from lm_deluge_cli.errors import ConfigError, UsageError

from .job_files import MINIMAL, config_error, flags, write


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (flags(max_concurrent_requests=0), "--max-concurrent-requests"),
        (flags(max_attempts=0), "--max-attempts"),
        (flags(max_attempts=-2), "--max-attempts"),
        (flags(request_timeout=0.0), "--request-timeout"),
        (flags(request_timeout=-1.0), "--request-timeout"),
        (flags(max_new_tokens=0), "--max-new-tokens"),
        (flags(temperature=3.0), "--temperature"),
        (flags(top_p=1.5), "--top-p"),
        (flags(reasoning_effort="max"), "--reasoning-effort"),
        (flags(top_logprobs=21), "--top-logprobs"),
        (flags(fsync="sometimes"), "fsync"),
        (flags(models=["gpt-4o=abc"]), "-m 'gpt-4o=abc'"),
    ],
)
def test_bad_flag_values_are_rejected_not_ignored(overrides: JobOverrides, fragment: str) -> None:
    assert fragment in config_error(None, overrides)


def test_invalid_toml_names_the_file_and_the_place(tmp_path: Path) -> None:
    job_file = write(tmp_path, 'input = "i"\noutput = \n')
    message = config_error(job_file)
    assert str(job_file) in message
    assert "not valid TOML" in message
    assert "line 2" in message


def test_missing_job_file(tmp_path: Path) -> None:
    job_file = tmp_path / "nope.toml"
    message = config_error(job_file)
    assert str(job_file) in message
    assert "does not exist" in message


def test_unreadable_job_file(tmp_path: Path) -> None:
    (tmp_path / "adir.toml").mkdir()
    assert "cannot read job file" in config_error(tmp_path / "adir.toml")
    (tmp_path / "latin1.toml").write_bytes(b'input = "\xe9"\n')
    assert "cannot read job file" in config_error(tmp_path / "latin1.toml")


def test_config_errors_are_usage_errors_with_exit_code_2(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_job(tmp_path / "nope.toml")
    assert info.value.exit_code == 2


# --- validate_sampling on its own (input lines and model tables use it) --------------------


def test_validate_sampling_returns_clean_floats() -> None:
    clean = validate_sampling({"temperature": 1, "top_p": 0, "top_logprobs": 0}, "line 3")
    assert clean == {"temperature": 1.0, "top_p": 0.0, "top_logprobs": 0}
    assert isinstance(clean["temperature"], float)
    assert validate_sampling({}, "x") == {}


def test_validate_sampling_error_uses_the_given_place() -> None:
    with pytest.raises(ConfigError) as info:
        validate_sampling({"top_p": 2}, "prompts.jsonl line 7")
    assert "prompts.jsonl line 7.top_p" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("END", ("END",)),
        (["a", "b"], ("a", "b")),
        (["1", "2", "3", "4"], ("1", "2", "3", "4")),
        ([], None),
        (None, None),
    ],
)
def test_stop_is_one_string_or_up_to_four(value: Any, expected: Any) -> None:
    assert validate_sampling({"stop": value}, "x") == {"stop": expected}


def test_stop_from_the_job_file(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, MINIMAL + '[sampling]\nstop = ["###", "END"]\n'))
    assert job.sampling.stop == ("###", "END")


def test_the_job_knows_which_sampling_fields_were_set(tmp_path: Path) -> None:
    # A value equal to the default still counts as set: tools with other defaults keep it.
    job = load_job(write(tmp_path, MINIMAL + "[sampling]\nmax_new_tokens = 512\n"))
    assert job.sampling_set == frozenset({"max_new_tokens"})
    job = load_job(None, flags(temperature=0.5))
    assert job.sampling_set == frozenset({"temperature"})
    assert load_job(None, flags()).sampling_set == frozenset()


def test_json_schema_file_resolves_against_the_job_file(tmp_path: Path) -> None:
    schema = {"type": "object", "required": ["a"]}
    (tmp_path / "schema.json").write_text(json.dumps(schema), "utf-8")
    job = load_job(write(tmp_path, MINIMAL + '[sampling]\njson_schema = "schema.json"\n'))
    assert job.sampling.json_schema == schema


@pytest.mark.parametrize(
    ("file_text", "says"),
    [(None, "does not exist"), ("{nope", "cannot read")],
)
def test_a_json_schema_file_that_cannot_be_used(
    tmp_path: Path, file_text: str | None, says: str
) -> None:
    if file_text is not None:
        (tmp_path / "schema.json").write_text(file_text, "utf-8")
    message = config_error(write(tmp_path, MINIMAL + '[sampling]\njson_schema = "schema.json"\n'))
    assert "sampling.json_schema" in message and says in message


def test_json_schema_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match="must be a JSON Schema object"):
        validate_sampling({"json_schema": [1]}, "x")


def test_a_bedrock_region_in_the_job_file(tmp_path: Path) -> None:
    text = MINIMAL.replace("openai:gpt-4.1-mini", "bedrock:m") + 'region = "eu-west-3"\n'
    assert load_job(write(tmp_path, text)).models[0].region == "eu-west-3"


@pytest.mark.parametrize("value", ['"2/2"', "1", '"half"'])
def test_a_bad_shard_in_the_job_file_names_the_key(tmp_path: Path, value: str) -> None:
    text = MINIMAL.replace("[[models]]", f"shard = {value}\n[[models]]")
    assert "shard" in config_error(write(tmp_path, text))


def test_a_bad_limiter_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_job(None, flags(limiter="http://user:s3cret-pw@redis.example:6379/0"))
    assert "s3cret-pw" not in str(info.value) and "--limiter" in str(info.value)


# --- files_root ------------------------------------------------------------------------


def test_files_root_from_the_job_file_resolves_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "jobs" / "media").mkdir(parents=True)
    job = load_job(write(tmp_path / "jobs", 'files_root = "media"\n' + MINIMAL))
    assert job.files_root == str(tmp_path / "jobs" / "media")


def test_files_root_from_the_flag_resolves_against_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "media").mkdir()
    monkeypatch.chdir(tmp_path)
    job = load_job(write(tmp_path / "jobs", MINIMAL), JobOverrides(files_root="media"))
    assert job.files_root == str(tmp_path / "media")
    assert load_job(write(tmp_path / "jobs", MINIMAL)).files_root is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("files_root = 3", "files_root must be a folder path"),
        ('files_root = ""', "files_root must be a folder path"),
        ('files_root = "nowhere"', "files_root"),
        ('files_root = "in.jsonl"', "is not a folder"),
    ],
)
def test_a_bad_files_root_is_named(tmp_path: Path, line: str, expected: str) -> None:
    (tmp_path / "in.jsonl").write_text("")
    job_file = tmp_path / "job.toml"
    job_file.write_text(line + "\n" + MINIMAL)
    with pytest.raises(ConfigError, match=expected):
        load_job(job_file)


# --- tools, tool choice, prompt caching, dedupe -------------------------------------------


def test_tool_parameters_may_name_a_json_file_beside_the_job(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    (tmp_path / "search.json").write_text(json.dumps(schema))
    job_file = write(
        tmp_path,
        'tool_choice = "search"\n'
        + MINIMAL
        + '[[tools]]\nname = "search"\nparameters = "search.json"\n',
    )
    job = load_job(job_file)
    assert job.requests.tools[0]["function"]["parameters"] == schema
    assert job.requests.tool_choice == {"type": "function", "function": {"name": "search"}}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[tools]]\nname = "a b"\n', "tools[0].name must be 1 to 64"),
        ('[[tools]]\nname = "s"\nparameters = "missing.json"\n', "missing.json does not exist"),
        ('[[tools]]\nname = "s"\nargs = 1\n', "unknown key 'args'"),
    ],
)
def test_bad_tools_name_the_entry(tmp_path: Path, text: str, fragment: str) -> None:
    message = config_error(write(tmp_path, MINIMAL + text))
    assert fragment in message


@pytest.mark.parametrize(
    ("top", "fragment"),
    [
        ('tool_choice = "search"\n', "names 'search', which is not one of the tools"),
        ('prompt_cache = "everything"\n', "prompt_cache must be one of system, tools"),
        (
            'prompt_cache = "system"\nprompt_cache_ttl = "2h"\n',
            "prompt_cache_ttl must be one of 5m, 1h",
        ),
        ("prompt_cache_key = 3\n", "prompt_cache_key must be a non-empty string"),
        ('dedupe = "no"\n', "dedupe must be true or false"),
    ],
)
def test_bad_request_keys_are_named(tmp_path: Path, top: str, fragment: str) -> None:
    assert fragment in config_error(write(tmp_path, top + MINIMAL))


def test_flags_for_tool_choice_and_prompt_cache_are_checked() -> None:
    assert "--tool-choice names 'x'" in config_error(None, flags(tool_choice="x"))
    assert "--prompt-cache must be one of" in config_error(None, flags(prompt_cache="all"))
    assert "--prompt-cache-ttl must be one of" in config_error(
        None, flags(prompt_cache="system", prompt_cache_ttl="1d")
    )
    assert "--samples must be an integer from 1 to 128" in config_error(None, flags(samples=0))
    assert load_job(None, flags(prompt_cache="none")).prompt_cache is None


def test_tools_module_is_found_beside_the_job_and_max_rounds_needs_it(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def f() -> None: ...\n")
    job = load_job(write(tmp_path, 'tools_module = "tools.py"\nmax_rounds = 3\n' + MINIMAL))
    assert (job.tools_module, job.max_rounds) == (str(tmp_path / "tools.py"), 3)
    assert load_job(write(tmp_path, 'tools_module = "tools.py"\n' + MINIMAL)).max_rounds == 10
    assert "max_rounds needs tools to run" in config_error(
        write(tmp_path, "max_rounds = 3\n" + MINIMAL)
    )
    assert "is not a Python file" in config_error(
        write(tmp_path, 'tools_module = "missing.py"\n' + MINIMAL)
    )
    assert "--max-rounds must be a positive integer" in config_error(
        None, flags(tools_module=str(tmp_path / "tools.py"), max_rounds=0)
    )
