"""The CLI's entry point: every message it prints itself shares one style."""

from __future__ import annotations

import warnings

import pytest

from lm_deluge_cli.cli import app
from tests.cli_runner import RunCli


def test_a_library_warning_prints_in_the_cli_style(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app._configure_logging

    def configure() -> None:
        # A library warning raised on the way in.
        original()
        warnings.warn("Image size (90000000 pixels) exceeds limit", UserWarning, stacklevel=1)

    monkeypatch.setattr(app, "_configure_logging", configure)
    result = run_cli("cache", "path")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().splitlines() == [
        "warning: Image size (90000000 pixels) exceeds limit"
    ]
