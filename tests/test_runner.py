"""The runner: what happens before the run's clock starts, and which input lines go on
(what an earlier run finished is skipped)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import lm_deluge_cli.runner as runner
from lm_deluge_cli.cli.app import app
from lm_deluge_cli.engine.pipeline import RunOutcome
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import FatalProviderError
from lm_deluge_cli.io.reader import BadLine, InputReader
from lm_deluge_cli.io.resume import ResumeState
from lm_deluge_cli.runner import skip_done
from lm_deluge_cli.transport import transport_class
from lm_deluge_cli.types import id_key

from .conftest import CANARY_KEY, StartMockServer


def _start_up(
    monkeypatch: pytest.MonkeyPatch, model: str, env: dict[str, str], tmp_path: Path
) -> list[str]:
    """Run `model` on two prompts; the order in which the HTTP library was loaded and the
    run's clock started."""
    order: list[str] = []

    def load(kind: str | None = None) -> Callable[[int], Any]:
        order.append("HTTP library")
        return transport_class(kind)

    def clock(**fields: Any) -> RunStats:
        order.append("clock")
        return RunStats(**fields)

    monkeypatch.setattr(runner, "transport_class", load)
    monkeypatch.setattr(runner, "RunStats", clock)
    rows = [{"id": i, "prompt": f"question {i}"} for i in range(2)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["run", "-m", model, "-i", "in.jsonl", "-o", "out.jsonl", "--no-cache"]
    env = {"LM_DELUGE_TOKENIZER": "heuristic", **env}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return order


def test_a_run_that_sends_loads_its_http_library_before_the_clock_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server()
    env = {"OPENAI_API_KEY": CANARY_KEY, "OPENAI_BASE_URL": url}
    order = _start_up(monkeypatch, "openai:gpt-4o-mini", env, tmp_path)
    assert order == ["HTTP library", "clock"]


def test_a_run_on_the_in_process_mock_loads_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _start_up(monkeypatch, "mock:fast", {}, tmp_path) == ["clock"]


def test_a_run_of_any_provider_on_a_mock_url_loads_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The base URL's scheme decides, not the provider: no key, no HTTP library.
    env = {"OPENAI_BASE_URL": "mock://in-process/v1"}
    assert _start_up(monkeypatch, "openai:gpt-4o-mini", env, tmp_path) == ["clock"]


LINES = b"".join(
    [
        b'{"id": 1, "prompt": "one"}\n',
        b'{"id": 2, "prompt": "two"}\n',
        b"not json\n",
        b'{"id": 4, "prompt": "four"}\n',
        b"{broken\n",
    ]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def passed(state: ResumeState | None) -> tuple[list[Any], RunStats]:
    stats = RunStats()
    with InputReader(io.BytesIO(LINES)) as reader:
        items = [item async for item in skip_done(reader, state, stats)]
    return [item.line if isinstance(item, BadLine) else item.id for item in items], stats


def state_of(ok: tuple[int, ...] = (), bad_lines: tuple[int, ...] = ()) -> ResumeState:
    state = ResumeState()
    for id_ in ok:
        state.ok.add(id_key(id_))
    for line in bad_lines:
        state.bad_lines.add(line)
    return state


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, [1, 2, 3, 4, 5]),
        (state_of(), [1, 2, 3, 4, 5]),
        (state_of(ok=(2,)), [1, 3, 4, 5]),
        (state_of(bad_lines=(3,)), [1, 2, 4, 5]),
        (state_of(ok=(1, 4), bad_lines=(5,)), [2, 3]),
    ],
)
@pytest.mark.anyio
async def test_what_the_output_finished_is_skipped(
    state: ResumeState | None, expected: list[Any]
) -> None:
    items, stats = await passed(state)
    assert items == expected
    assert stats.skipped == 5 - len(expected)
    assert (stats.total, stats.total_is_estimate) == (5, False)


@pytest.mark.parametrize(
    ("ending", "counts", "code"),
    [
        ({}, {"ok": 3}, 0),
        ({}, {"ok": 2, "failed": 1}, 1),
        # Nothing failed this run, but a line's record from an earlier run is an error.
        ({}, {"skipped": 3, "skipped_failed": 1}, 1),
        ({"cost_cap_reached": True}, {"ok": 1}, 4),
        ({"cost_cap_reached": True}, {"ok": 1, "failed": 1}, 4),
        ({"interrupted": True}, {"ok": 1}, 130),
        ({"fatal": FatalProviderError("bad key")}, {"ok": 1}, 3),
    ],
)
def test_the_exit_code_says_what_the_output_holds(
    ending: dict[str, Any], counts: dict[str, int], code: int
) -> None:
    stats = RunStats(total=3)
    for name, value in counts.items():
        setattr(stats, name, value)
    outcome = RunOutcome(
        stats.snapshot(),
        interrupted=ending.get("interrupted", False),
        fatal=ending.get("fatal"),
        cost_cap_reached=ending.get("cost_cap_reached", False),
    )
    report = runner.JobReport(outcome, "out.jsonl", None, 0, 0)
    assert report.exit_code == code
    assert report.to_dict()["exit_code"] == code
