"""A stop does not wait for slow per-line work: a line whose images take most of a minute to
read and scale down, and SIGTERM (or two Ctrl-Cs) still ends the run within the grace time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage

# 40 photos of 6000×6000 px, each scaled down to the wire's 2000 px: about a second each.
PHOTOS = 40
# README, "What you see, and exit codes": requests in flight may take up to 10 s.
GRACE_S = 10


@pytest.mark.parametrize(
    "signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]], ids=["sigterm", "ctrl-c-twice"]
)
def test_a_stop_during_a_slow_line_ends_the_run_within_the_grace_time(
    tmp_path: Path, cli_env: Callable[..., dict[str, str]], signals: list[signal.Signals]
) -> None:
    PILImage.new("RGB", (6000, 6000), (200, 30, 40)).save(tmp_path / "photo.jpg", quality=50)
    photos = [{"type": "image", "path": "photo.jpg"}] * PHOTOS
    rows = [
        {"id": "slow", "messages": [{"role": "user", "content": photos}]},
        {"id": "after", "prompt": "hello"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast", "--no-cache", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lm_deluge_cli", *args],
        cwd=tmp_path,
        env=cli_env(),
        stderr=subprocess.PIPE,
    )
    try:
        # The output is opened before the first line is read: the slow line is under way.
        deadline = time.monotonic() + 30
        while not (tmp_path / "out.jsonl").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "the slow line was quicker than expected"
        stopped = time.monotonic()
        # (Back to back: the run may be gone before a later second Ctrl-C.)
        for sig in signals:
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=GRACE_S + 5)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert took < GRACE_S, took
    assert b"resume with: lm-deluge run" in stderr
    assert b"Traceback" not in stderr
