"""The [limits] table and the rate flags (config/limits.py): "unlimited" and "auto" in files,
0 on the command line, and the spending cap."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lm_deluge_cli.config import JobOverrides, load_job

from .job_files import MINIMAL, config_error, flags, write

# --- Rates: "unlimited" in files, 0 on the command line ---------------------------------


@pytest.mark.parametrize(
    ("toml_value", "expected"),
    [("60", 60.0), ("0.5", 0.5), ('"unlimited"', None), ('"auto"', "auto")],
)
def test_file_rates(tmp_path: Path, toml_value: str, expected: float | None) -> None:
    text = MINIMAL + f"max_requests_per_minute = {toml_value}\n"
    text += f"[limits]\nmax_requests_per_minute = {toml_value}\n"
    text += f"max_tokens_per_minute = {toml_value}\n"
    job = load_job(write(tmp_path, text))
    assert job.limits.max_requests_per_minute == expected
    assert job.limits.max_tokens_per_minute == expected
    assert job.models[0].max_requests_per_minute == expected


@pytest.mark.parametrize(
    ("toml_value", "shown"),
    [("0", "0"), ("-5", "-5"), ("inf", "inf"), ("nan", "nan"), ('"none"', "'none'"),
     ("true", "got true"), ('"Unlimited"', "'Unlimited'")],
)  # fmt: skip
def test_bad_file_rates_name_the_key(tmp_path: Path, toml_value: str, shown: str) -> None:
    for section, key in (
        ("[limits]\n", "limits.max_requests_per_minute"),
        ("[limits]\n", "limits.max_tokens_per_minute"),
        ("", "models[0].max_requests_per_minute"),
        ("", "models[0].max_tokens_per_minute"),
    ):
        name = key.rsplit(".", 1)[1]
        message = config_error(write(tmp_path, MINIMAL + f"{section}{name} = {toml_value}\n"))
        assert key in message
        assert '"unlimited"' in message
        assert shown in message


@pytest.mark.parametrize("value", [-1.0, math.nan, "-3", "fast", "", "inf"])
def test_bad_flag_rates_name_the_flag(value: float | str) -> None:
    message = config_error(None, flags(max_requests_per_minute=value))
    assert "--max-requests-per-minute" in message
    assert "0 for unlimited" in message
    assert "auto" in message
    message = config_error(None, flags(max_tokens_per_minute=value))
    assert "--max-tokens-per-minute" in message


def test_auto_in_the_job_file_for_the_run_and_for_one_model(tmp_path: Path) -> None:
    text = MINIMAL + 'max_tokens_per_minute = "auto"\n'
    text += '[limits]\nmax_requests_per_minute = "auto"\nmax_tokens_per_minute = 1000\n'
    job = load_job(write(tmp_path, text))
    assert job.limits.max_requests_per_minute == "auto"
    assert job.limits.max_tokens_per_minute == 1000.0
    assert job.models[0].max_tokens_per_minute == "auto"
    assert job.models[0].max_requests_per_minute is None


# --- max_cost: a positive number of dollars ---------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "inf", '"five"', "true"])
def test_bad_max_cost_names_the_key(tmp_path: Path, value: str) -> None:
    message = config_error(write(tmp_path, MINIMAL + f"[limits]\nmax_cost = {value}\n"))
    assert "limits.max_cost" in message
    assert "US dollars" in message


@pytest.mark.parametrize("value", [0.0, -2.0, math.inf])
def test_bad_max_cost_flag_names_the_flag(value: float) -> None:
    assert "--max-cost" in config_error(None, flags(max_cost=value))


def test_max_cost_defaults_to_none_and_the_flag_beats_the_file(tmp_path: Path) -> None:
    assert load_job(write(tmp_path, MINIMAL)).limits.max_cost is None
    job_file = write(tmp_path, MINIMAL + "[limits]\nmax_cost = 3\n")
    assert load_job(job_file).limits.max_cost == 3.0
    assert load_job(job_file, JobOverrides(max_cost=0.25)).limits.max_cost == 0.25
