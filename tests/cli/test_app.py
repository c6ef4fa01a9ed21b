"""The CLI's entry point: every message it prints itself shares one style."""

from __future__ import annotations

import subprocess
import sys

# Runs the console script's entry point with a library warning raised on the way in.
_WARN_THEN_RUN = """
import sys, warnings
from lm_deluge_cli.cli import app
original = app._configure_logging
def configure():
    original()
    warnings.warn("Image size (90000000 pixels) exceeds limit", UserWarning)
app._configure_logging = configure
sys.argv = ["lm-deluge", "cache", "path"]
app.main()
"""


def test_a_library_warning_prints_in_the_cli_style() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WARN_THEN_RUN], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().splitlines() == [
        "warning: Image size (90000000 pixels) exceeds limit"
    ]
