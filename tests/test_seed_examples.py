"""The original library's README examples, written as its users write them, run unchanged
against the mock server standing in for OpenAI and Anthropic (base URLs from the environment,
as the official SDKs read them)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image as PILImage

from lm_deluge_cli import Conversation, LLMClient, Message
from lm_deluge_cli.mock.simulator import mock_completion

from .conftest import CANARY_KEY, StartMockServer


@pytest.fixture
def providers(start_mock_server: StartMockServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """OpenAI and Anthropic both answered by one mock server; returns its root URL."""
    url, _ = start_mock_server()
    root = url.removesuffix("/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{root}/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"{root}/anthropic")
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_KEY)
    return root


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hello(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_quickstart(providers: str) -> None:
    client = LLMClient("gpt-4.1-mini")
    resps = client.process_prompts_sync(["Hello, world!"])
    assert resps[0].completion == mock_completion(hello("Hello, world!"), "gpt-4.1-mini")
    assert resps[0].model == "gpt-4.1-mini" and resps[0].cost_usd > 0


def test_basic(providers: str) -> None:
    client = LLMClient.basic("gpt-4.1-mini")
    assert client.process_prompts_sync(["Hi"], return_completions_only=True) == [
        mock_completion(hello("Hi"), "gpt-4.1-mini")
    ]


def test_spraying_across_two_providers(providers: str) -> None:
    client = LLMClient(["gpt-4.1-mini", "claude-4.5-haiku"], max_requests_per_minute=10_000)
    # Few prompts: the default 100,000 tokens/min paces these ~525-token requests.
    prompts = [f"Hello, {'Claude' if i % 2 else 'ChatGPT'}! ({i})" for i in range(20)]
    resps = client.process_prompts_sync(prompts)
    assert all(r.status == "ok" for r in resps)
    # 1:1 by weight: both models get some (all 20 on one would be a 1 in 500,000 event).
    assert set(Counter(r.model for r in resps)) == {"gpt-4.1-mini", "claude-4.5-haiku"}
    claude = next(r for r in resps if r.model == "claude-4.5-haiku")
    assert isinstance(claude.id, int)
    # Sent in Anthropic's wire format under its wire id: the mock's answer depends on both.
    assert claude.completion == mock_completion(
        hello(prompts[claude.id]), "claude-haiku-4-5-20251001"
    )


def test_a_conversation_with_an_image(providers: str, tmp_path: Path) -> None:
    image = tmp_path / "tests" / "image.jpg"
    image.parent.mkdir()
    PILImage.new("RGB", (1600, 1200), (200, 120, 40)).save(image, format="JPEG")
    prompt = (
        Conversation()
        .system("You are a helpful assistant.")
        .add(Message.user("What's in this image?").add_image(str(image)))
    )
    for model in ("gpt-4.1-mini", "claude-4.5-haiku"):
        resps = LLMClient(model).process_prompts_sync([prompt])
        assert resps[0].status == "ok", resps[0].error
        # Counted as an image by the provider's rule, not as the bytes of its base64.
        assert resps[0].usage is not None and 100 < resps[0].usage.input_tokens < 3_000


@pytest.mark.anyio
async def test_process_prompts_async_completions_only(providers: str) -> None:
    client = LLMClient(
        "gpt-4.1-mini",
        max_requests_per_minute=100,
        max_tokens_per_minute=500_000,
        max_concurrent_requests=500,
    )
    completions = await client.process_prompts_async(
        ["What is the capital of Mars?"], show_progress=False, return_completions_only=True
    )
    assert completions == [mock_completion(hello("What is the capital of Mars?"), "gpt-4.1-mini")]
