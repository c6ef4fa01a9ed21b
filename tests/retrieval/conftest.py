"""Fixtures of the embed and rerank suites (helpers live in `support.py`)."""

from __future__ import annotations

import pytest

from lm_deluge_cli.engine import pipeline


@pytest.fixture(autouse=True)
def no_idle_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches fill up as they would on a quiet machine: the tests count requests, and a
    pause of a quarter second (a full garbage collection late in a long test run) would
    otherwise send a part batch and one request more."""
    monkeypatch.setattr(pipeline, "IDLE_FLUSH_S", 30.0)
