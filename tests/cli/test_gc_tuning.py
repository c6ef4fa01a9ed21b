"""The collector during a run: start-up's objects frozen, thresholds raised, both restored."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lm_deluge_cli.cli import execute
from lm_deluge_cli.cli.app import app
from lm_deluge_cli.cli.gc_tuning import RUN_THRESHOLDS, fewer_collections
from lm_deluge_cli.runner import run_job


@pytest.fixture(autouse=True)
def standard_collector() -> Iterator[None]:
    """Each test starts from, and leaves, the collector as the test process had it."""
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_inside_the_block_startup_is_frozen_and_collections_are_rarer() -> None:
    before = gc.get_threshold()
    assert before != RUN_THRESHOLDS
    with fewer_collections():
        assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_when_the_block_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_objects_frozen_by_someone_else_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        pass
    assert gc.get_freeze_count() >= frozen


def test_a_run_goes_with_fewer_collections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int, int]] = []

    async def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold())
        return await run_job(*args, **kwargs)

    monkeypatch.setattr(execute, "run_job", watched)
    rows = [{"id": i, "prompt": f"question {i}"} for i in range(3)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl", "--no-cache"]
    result = CliRunner().invoke(app, args, env={"LM_DELUGE_TOKENIZER": "heuristic"})
    assert result.exit_code == 0, result.output
    assert seen == [RUN_THRESHOLDS]
    assert gc.get_threshold() != RUN_THRESHOLDS
