"""Generated job files with unknown keys or values of the wrong type: each fails with a
ConfigError (exit 2 from the CLI) whose message names the key."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm_deluge_cli.config import load_job
from lm_deluge_cli.errors import EXIT_USAGE, ConfigError
from tests.cli_runner import run_cli

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

MINIMAL: dict[str, Any] = {
    "input": "in.jsonl",
    "output": "out.jsonl",
    "models": [{"name": "mock:fast"}],
}

# Where a key lives: None is the top level, "models" the first [[models]] table.
TABLES = (None, "limits", "cache", "sampling", "models")
KNOWN = {
    None: {"input", "output", "models", "limits", "sampling", "retry_other_model", "fsync"}
    | {"registry", "cache", "shard"},
    "limits": {"max_requests_per_minute", "max_tokens_per_minute", "max_concurrent_requests"}
    | {"max_attempts", "request_timeout", "max_cost", "limiter", "limiter_key"},
    "cache": {"enabled", "path", "read_only", "refresh", "ttl"},
    "sampling": {"max_new_tokens", "temperature", "top_p", "json_mode", "json_schema"}
    | {"reasoning_effort", "logprobs", "top_logprobs", "stop"},
    "models": {"name", "weight", "base_url", "api_key_env", "sampling", "region", "mock"}
    | {"max_requests_per_minute", "max_tokens_per_minute"},
}

tables = st.dictionaries(st.sampled_from("abc"), st.integers(), min_size=1, max_size=2)
arrays = st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=3)
words = st.text("abcdefghijklmnopqrstuvwxyz -", min_size=1, max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False)
not_strings = st.one_of(st.integers(), floats, st.booleans(), arrays, tables)
not_bools = st.one_of(words, st.integers(), arrays, tables)
not_numbers = st.one_of(words, st.booleans(), arrays, tables)
not_tables = st.one_of(words, st.integers(), st.booleans(), arrays)

# (table, key) → values of a wrong type (or an impossible value) for it.
WRONG: dict[tuple[str | None, str], st.SearchStrategy[Any]] = {
    (None, "input"): not_strings,
    (None, "output"): not_strings,
    (None, "models"): st.one_of(words, st.integers(), tables),
    (None, "limits"): not_tables,
    (None, "sampling"): not_tables,
    (None, "cache"): not_tables,
    (None, "registry"): st.one_of(words, st.integers(), tables),
    (None, "retry_other_model"): not_bools,
    (None, "fsync"): st.one_of(not_strings, words.filter(lambda w: w not in ("none", "end"))),
    (None, "shard"): st.one_of(st.booleans(), arrays, tables, words),
    ("limits", "max_requests_per_minute"): not_numbers.filter(
        lambda v: v not in ("auto", "unlimited")
    ),
    ("limits", "max_tokens_per_minute"): not_numbers.filter(
        lambda v: v not in ("auto", "unlimited")
    ),
    ("limits", "max_concurrent_requests"): not_numbers,
    ("limits", "max_attempts"): not_numbers,
    ("limits", "request_timeout"): not_numbers,
    ("limits", "max_cost"): not_numbers,
    ("limits", "limiter"): not_strings,
    ("limits", "limiter_key"): not_strings,
    ("cache", "enabled"): not_bools,
    ("cache", "read_only"): not_bools,
    ("cache", "refresh"): not_bools,
    ("cache", "path"): not_strings,
    ("cache", "ttl"): not_numbers,
    ("sampling", "temperature"): not_numbers,
    ("sampling", "top_p"): not_numbers,
    ("sampling", "max_new_tokens"): not_numbers,
    ("sampling", "json_mode"): not_bools,
    ("sampling", "logprobs"): not_bools,
    ("sampling", "reasoning_effort"): st.one_of(st.integers(), arrays, tables),
    ("models", "weight"): not_numbers,
    ("models", "base_url"): not_strings,
    ("models", "api_key_env"): not_strings,
    ("models", "region"): not_strings,
    ("models", "mock"): not_tables,
    ("models", "max_requests_per_minute"): not_numbers.filter(
        lambda v: v not in ("auto", "unlimited")
    ),
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(data: dict[str, Any]) -> str:
    """TOML for a job: scalars and inline values first, then each table and [[models]]."""
    top = [f"{k} = {toml_value(v)}" for k, v in data.items() if not _is_section(k, v)]
    sections: list[str] = []
    for key, value in data.items():
        if not _is_section(key, value):
            continue
        if key == "models":
            for entry in value:
                body = "\n".join(f"{k} = {toml_value(v)}" for k, v in entry.items())
                sections.append(f"[[models]]\n{body}")
        else:
            body = "\n".join(f"{k} = {toml_value(v)}" for k, v in value.items())
            sections.append(f"[{key}]\n{body}")
    return "\n".join(top) + "\n\n" + "\n\n".join(sections) + "\n"


def _is_section(key: str, value: Any) -> bool:
    if key == "models":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value) and value != []
    return key in ("limits", "cache", "sampling") and isinstance(value, dict)


def with_value(table: str | None, key: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(MINIMAL))
    if table is None:
        data[key] = value
    elif table == "models":
        data["models"][0][key] = value
    else:
        data.setdefault(table, {})[key] = value
    return data


def config_error(tmp_path: Path, data: dict[str, Any]) -> str:
    job_file = tmp_path / "job.toml"
    job_file.write_text(toml_document(data))
    with pytest.raises(ConfigError) as caught:
        load_job(job_file)
    return str(caught.value)


unknown_keys = st.tuples(
    st.sampled_from(TABLES),
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=16),
).filter(lambda pair: pair[1] not in KNOWN[pair[0]])


@SETTINGS
@given(unknown_keys)
def test_an_unknown_key_is_named(tmp_path: Path, where: tuple[str | None, str]) -> None:
    table, key = where
    message = config_error(tmp_path, with_value(table, key, 1))
    assert f"unknown key '{'models[0].' if table == 'models' else ''}" in message
    assert key in message


@st.composite
def wrong_values(draw: st.DrawFn) -> tuple[str | None, str, Any]:
    table, key = draw(st.sampled_from(sorted(WRONG, key=str)))
    return table, key, draw(WRONG[table, key])


@SETTINGS
@given(wrong_values())
def test_a_value_of_the_wrong_type_is_named(
    tmp_path: Path, wrong: tuple[str | None, str, Any]
) -> None:
    table, key, value = wrong
    message = config_error(tmp_path, with_value(table, key, value))
    assert key in message, message


def test_the_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    job_file = tmp_path / "job.toml"
    job_file.write_text(toml_document(with_value("limits", "max_attemps", 3)))
    done = run_cli("run", str(job_file))
    assert done.returncode == EXIT_USAGE
    assert b"limits.max_attemps" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
