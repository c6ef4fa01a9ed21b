"""Tools from Python and from a job file, against the mock server standing in for OpenAI and
for a self-hosted OpenAI-compatible server: the README's examples, run as written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

from lm_deluge_cli import Conversation, LLMClient, ToolCall
from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.runner import run_job

from ..conftest import CANARY_KEY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def openai(
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    url, _ = start_mock_server(tool_rounds=2)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    return url


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return {"city": city, "temperature": 21, "unit": unit}


def test_the_readme_python_example(openai: str) -> None:
    client = LLMClient("openai:gpt-4.1-mini", tools=[get_weather])
    result = client.process_prompts_sync(["Weather in Paris?"])[0]
    call = result.tool_calls[0]
    assert isinstance(call, ToolCall) and call.name == "get_weather"
    assert isinstance(call.arguments, dict) and "city" in call.arguments

    conversation = Conversation.user("Weather in Paris?").with_response(result)
    for each in result.tool_calls:
        conversation.with_tool_result(each.id, get_weather(**(each.arguments or {})))
    final = client.process_prompts_sync([conversation])[0]
    assert final.status == "ok" and (final.completion or final.tool_calls)

    runs = client.run_agent_loops(
        ["Weather in Paris?", "Weather in Oslo, in fahrenheit?"], max_rounds=4
    )
    for run in runs:
        assert run.status == "ok" and run.completion
        assert 2 <= len(run.rounds) <= 3
        assert run.messages[-1] == {"role": "assistant", "content": run.completion}
        tool_results = [m for m in run.messages if m["role"] == "tool"]
        assert tool_results and all('"temperature":21' in m["content"] for m in tool_results)
        assert run.conversation.messages[0].text is not None


def test_the_tools_example_job_on_a_compatible_server(openai: str, tmp_path: Path) -> None:
    example = (REPO / "configs" / "tools.example.toml").read_text()
    job_text = example.replace('"http://127.0.0.1:8000/v1"', json.dumps(openai))
    (tmp_path / "job.toml").write_text(job_text)
    questions = ["What is the weather in Lisbon?", "Convert 20 USD to euros."]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"prompt": q}) + "\n" for q in questions))
    job = load_job(
        tmp_path / "job.toml",
        JobOverrides(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out.jsonl")),
    )
    report = anyio.run(run_job, job)
    assert report.exit_code == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for record in records:
        assert record["status"] == "ok"
        assert record["finish_reason"] == "tool_calls"
        names = {call["name"] for call in record["tool_calls"]}
        assert names <= {"get_weather", "convert_currency"}
        assert all(isinstance(call["arguments"], dict) for call in record["tool_calls"])
