"""The Python API runs the same engine as the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

import lm_deluge_cli
from lm_deluge_cli import LLMClient, SamplingParams
from lm_deluge_cli.config import load_job
from lm_deluge_cli.conversation import Conversation, Message, Text
from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.mock.simulator import mock_completion

from .job_files import MINIMAL


def test_public_names_are_exported() -> None:
    for name in lm_deluge_cli.__all__:
        assert hasattr(lm_deluge_cli, name), name


def test_process_prompts_sync_keeps_input_order() -> None:
    prompts: list[lm_deluge_cli.PromptInput] = [
        "first",
        [{"role": "user", "content": "second"}],
        {"prompt": "third", "metadata": {"k": 1}},
    ]
    results = LLMClient.basic("mock:fast").process_prompts_sync(prompts)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert results[0].completion == mock_completion([{"role": "user", "content": "first"}], "fast")
    assert results[1].completion == mock_completion([{"role": "user", "content": "second"}], "fast")
    assert results[2].metadata == {"k": 1}
    assert results[0].usage is not None and results[0].usage.input_tokens > 0


def test_completions_only_and_bad_prompts() -> None:
    client = LLMClient(
        ["mock:fast", "mock:other"],
        weights=[1, 1],
        sampling_params=SamplingParams(max_new_tokens=5),
        max_requests_per_minute=None,
        max_tokens_per_minute=None,
        seed=4,
    )
    out = client.process_prompts_sync(
        ["a", {"messages": []}, "b"] * 5, return_completions_only=True
    )
    assert len(out) == 15
    assert out[1] is None and out[4] is None
    assert all(isinstance(c, str) for i, c in enumerate(out) if i % 3 != 1)


@pytest.mark.anyio
async def test_async_api() -> None:
    results = await LLMClient.basic("mock:fast").process_prompts_async(["x"] * 50)
    assert len(results) == 50 and all(not r.is_error for r in results)


def test_missing_key_and_bad_arguments() -> None:
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        LLMClient.basic("openai:gpt-4.1-mini").process_prompts_sync(["x"])
    with pytest.raises(ConfigError):
        LLMClient(["mock:fast"], weights=[1, 2])
    with pytest.raises(ConfigError, match="max_concurrent_requests"):
        LLMClient("mock:fast", max_concurrent_requests=0)


@pytest.mark.parametrize(
    ("argument", "value", "toml"),
    [
        ("max_attempts", 0, "0"),
        ("max_concurrent_requests", 2.5, "2.5"),
        ("request_timeout", -1.0, "-1.0"),
        ("max_requests_per_minute", -5.0, None),
    ],
)
def test_bad_limits_get_the_job_files_message_minus_its_place(
    tmp_path: Path, argument: str, value: Any, toml: str | None
) -> None:
    with pytest.raises(ConfigError) as info:
        LLMClient("mock:fast", **{argument: value})
    if argument == "max_requests_per_minute":
        # Only the way to say "no limit" differs: None here, "unlimited" in a file.
        assert str(info.value) == (
            'max_requests_per_minute must be a positive number per minute, "auto" or None '
            "for unlimited, got -5.0"
        )
        return
    job_file = tmp_path / "job.toml"
    job_file.write_text(f"{MINIMAL}[limits]\n{argument} = {toml}\n")
    with pytest.raises(ConfigError) as from_file:
        load_job(job_file)
    assert str(from_file.value) == f"{job_file}: limits.{info.value}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1, 0]}, "weights[1] must be a positive number, got 0"),
        ({"models": ["mock:fast", ""]}, 'models[1] is required, e.g. "openai:gpt-4.1-mini"'),
        ({"prompt_cache_warmup": -1}, "prompt_cache_warmup must be a number of seconds"),
        ({"cache": ""}, "cache must be a directory, a .sqlite file or a URL"),
    ],
)
def test_other_bad_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"models": ["mock:fast", "mock:other"], **kwargs}
    with pytest.raises(ConfigError) as info:
        LLMClient(**kwargs)
    assert str(info.value).startswith(message)


def test_max_rounds_is_checked_as_in_a_job() -> None:
    with pytest.raises(ConfigError, match=r"^max_rounds must be a positive integer, got 0$"):
        LLMClient("mock:fast").run_agent_loops(["x"], tools=[_tool], max_rounds=0)


def _tool(city: str) -> str:
    """A tool for the agent loop's argument check."""
    return city


def test_zero_rates_mean_unlimited() -> None:
    client = LLMClient("mock:fast", max_requests_per_minute=0, max_tokens_per_minute=0)
    assert client.limits.max_requests_per_minute is None
    assert client.process_prompts_sync(["x"], return_completions_only=True)[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_conversation_with_an_image_runs(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    PILImage.new("RGB", (4000, 3000), (40, 80, 120)).save(photo, format="JPEG")
    conversation = Conversation.system("Be brief.").add(
        Message.user("What is in this picture?").add_image(photo)
    )
    prompts: list[lm_deluge_cli.PromptInput] = [
        conversation,
        {"messages": conversation, "metadata": {"k": 2}, "id": "with-meta"},
    ]
    results = LLMClient.basic("mock:fast").process_prompts_sync(prompts)
    assert [r.status for r in results] == ["ok", "ok"]
    # The mock's reply is a digest of the messages it received: exactly the wire form.
    assert results[0].completion == mock_completion(conversation.to_openai(), "fast")
    assert results[1].id == "with-meta" and results[1].metadata == {"k": 2}
    assert results[0].usage is not None and results[0].usage.input_tokens > 85


def test_a_conversation_that_cannot_be_sent_is_an_error_result() -> None:
    broken = Conversation().add(Message("tool", [Text("not a tool result")]))
    results = LLMClient.basic("mock:fast").process_prompts_sync([broken, "fine"])
    assert results[0].is_error and "tool message" in str(results[0].error)
    assert results[1].status == "ok"


def test_a_client_cache_answers_a_second_call() -> None:
    client = LLMClient("mock:fast", cache="memory:")
    first = client.process_prompts_sync(["a", "b"])
    assert not any(r.cached for r in first)
    # A memory: cache lives as long as one call; a directory outlives the process.
    disk = LLMClient("mock:fast", cache="answers")
    disk.process_prompts_sync(["a", "b"])
    again = disk.process_prompts_sync(["a", "b", "a"])
    assert [r.cached for r in again] == [True, True, True]
    assert [r.completion for r in again] == [r.completion for r in [*first, first[0]]]
    # An identical line whose answer is stored is a hit like the first, not a copy of it.
    assert [r.deduplicated for r in again] == [False, False, False]
