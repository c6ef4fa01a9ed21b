"""ruff, mypy and the import contracts run in the suite: one command checks everything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for p in ("lm_deluge_cli", "tests", "bench") if (ROOT / p).is_dir()]


def _tool(name: str) -> list[str]:
    """The tool from this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return [found]


def _run(args: list[str]) -> None:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"


def test_ruff_check() -> None:
    _run([*_tool("ruff"), "check", *SOURCES])


def test_ruff_format() -> None:
    _run([*_tool("ruff"), "format", "--check", *SOURCES])


def test_mypy() -> None:
    _run([*_tool("mypy")])


def test_import_contracts() -> None:
    # The layers in pyproject.toml's [tool.importlinter]: a lower layer never imports a
    # higher one.
    _run([*_tool("lint-imports"), "--no-cache"])
