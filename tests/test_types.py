"""What goes out: SamplingParams checks its fields however it is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.config import load_job
from lm_deluge_cli.errors import ConfigError, InvalidValueError
from lm_deluge_cli.types import SamplingParams


@pytest.mark.parametrize(
    ("field", "value", "toml", "problem"),
    [
        ("temperature", 9, "9", "must be a number from 0 to 2, got 9"),
        ("max_new_tokens", 0, "0", "must be a positive integer, got 0"),
        ("samples", 129, "129", "must be an integer from 1 to 128, got 129"),
        ("reasoning_effort", "max", '"max"', "must be one of minimal, low, medium, high"),
    ],
)
def test_sampling_params_refuse_what_a_job_file_refuses(
    tmp_path: Path, field: str, value: Any, toml: str, problem: str
) -> None:
    with pytest.raises(InvalidValueError) as info:
        SamplingParams(**{field: value})
    assert str(info.value).startswith(f"{field} {problem}")
    job = tmp_path / "job.toml"
    job.write_text(
        f'input = "i"\noutput = "o"\nmodels = [{{ name = "m" }}]\n[sampling]\n{field} = {toml}\n'
    )
    with pytest.raises(ConfigError) as from_file:
        load_job(job)
    assert str(from_file.value) == f"{job}: sampling.{info.value}"


def test_sampling_params_keep_their_fields_normalised() -> None:
    made = SamplingParams(temperature=1, top_p=0, stop="END")  # type: ignore[arg-type]
    assert (made.temperature, made.top_p, made.stop) == (1.0, 0.0, ("END",))
    assert isinstance(made.temperature, float)
    assert made.merged({"stop": ["a", "b"]}).stop == ("a", "b")
