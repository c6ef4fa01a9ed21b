"""What the job-file tests share: the smallest valid job, and ways to load one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.errors import ConfigError

# The smallest valid job file; tests append to it.
MINIMAL = """
input = "in.jsonl"
output = "out.jsonl"
[[models]]
name = "openai:gpt-4.1-mini"
"""


def write(folder: Path, text: str, name: str = "job.toml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def flags(**fields: Any) -> JobOverrides:
    """Overrides for a flags-only job: input, output and one model unless given."""
    fields.setdefault("input", "in.jsonl")
    fields.setdefault("output", "out.jsonl")
    fields.setdefault("models", ["openai:gpt-4.1-mini"])
    return JobOverrides(**fields)


def config_error(job_file: Path | None, overrides: JobOverrides | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_job(job_file, overrides)
    return str(info.value)
