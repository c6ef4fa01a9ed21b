"""Every adapter against the mock provider over a real socket: completions, usage, 429s,
overloads and refused keys, through the engine's Requester as a run would send them."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import (
    APIStatusError,
    InternalServerError,
    OverloadedError,
    RateLimitError,
)
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.simulator import MockSettings, Simulator, mock_completion
from lm_deluge_cli.mock.transport import InProcessTransport
from lm_deluge_cli.mock.wire import count_prompt_tokens, count_text_tokens
from lm_deluge_cli.providers import Adapter, Endpoint, adapter_for
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams
from tests.cli_runner import run_cli

from .conftest import RecordRequester, one_model_requester

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_waiting")]

StartMockServer = Callable[..., tuple[str, Callable[[], None]]]

RIGHT_KEY = "sk-mock-right-key-0123456789"
WRONG_KEY = "sk-mock-wrong-key-9876543210"
# Bedrock's "key" is the access key id of the signature; the secret is never checked.
AWS_KEY_ID = "AKIAMOCKRIGHT0000000"
AWS_WRONG_KEY_ID = "AKIAMOCKWRONG0000000"
MESSAGES = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "What is the capital of France?"},
]


@dataclass(frozen=True)
class Case:
    """One provider: a priced model of the registry, and how a 429 from it reads."""

    provider: str
    model: str
    key_env: str
    # retry_after of a 429 ten seconds from admission, as the provider's format carries it
    # (None: the format has no wait to give); checked to within half a second.
    retry_after: float | None
    overload: type[APIStatusError]
    # Whether the provider sends rate-limit headers that say how many requests are left.
    reports_remaining: bool


CASES = [
    Case("openai", "openai:gpt-4.1-mini", "OPENAI_API_KEY", 10.0, OverloadedError, True),
    Case(
        "anthropic",
        "anthropic:claude-haiku-4-5-20251001",
        "ANTHROPIC_API_KEY",
        10.0,
        OverloadedError,
        True,
    ),
    Case("gemini", "gemini:gemini-2.5-flash", "GEMINI_API_KEY", 10.0, InternalServerError, False),
    # Mistral's overload is its 429 "Service tier capacity exceeded", which has no wait.
    Case("mistral", "mistral:mistral-small-2506", "MISTRAL_API_KEY", None, RateLimitError, True),
    Case("cohere", "cohere:command-a-03-2025", "CO_API_KEY", None, InternalServerError, True),
    Case(
        "bedrock",
        "bedrock:global.anthropic.claude-sonnet-4-6",
        "",
        None,
        InternalServerError,
        False,
    ),
]
IDS = [case.provider for case in CASES]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def server_key(case: Case) -> str:
    return AWS_KEY_ID if case.provider == "bedrock" else RIGHT_KEY


def aws_env(key: str) -> dict[str, str]:
    """Fake AWS credentials, passed in rather than read from the test run's environment."""
    key_id = AWS_KEY_ID if key == RIGHT_KEY else AWS_WRONG_KEY_ID
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": "mock-secret-not-checked",
        "AWS_REGION": "us-east-1",
    }


def endpoint(case: Case, root: str, key: str = RIGHT_KEY) -> Endpoint:
    env = {case.key_env: key} if case.key_env else aws_env(key)
    # The variable is named, so the key is read at a mock:// URL too (where a provider's own
    # is not): the simulator checks it.
    entry = ModelEntry(case.model, base_url=base_url(root, case.provider), api_key_env=case.key_env)
    return resolve_endpoint(entry, env=env)


def adapter(case: Case, key: str = RIGHT_KEY) -> Adapter:
    if case.provider != "bedrock":
        return adapter_for(load_registry().provider(case.provider).wire_format)
    return BedrockAnthropicAdapter(env=aws_env(key))


def requester(
    case: Case, root: str, transport: Transport, *, key: str = RIGHT_KEY, attempts: int = 3
) -> tuple[RecordRequester, RunStats]:
    target = endpoint(case, root, key)
    return one_model_requester(target, adapter(case, key), transport, attempts=attempts)


def prompt(messages: list[dict[str, Any]] = MESSAGES) -> Prompt:
    return Prompt(id="p1", line=1, messages=messages)


async def send_once(case: Case, root: str, transport: Transport) -> HttpResponse:
    """One request through the adapter and transport, without the Requester's retries."""
    built = adapter(case).build_request(endpoint(case, root), prompt(), SamplingParams(), 5)
    return await transport.send(built)


def expected_reply(case: Case) -> str:
    wire_id = case.model.split(":", 1)[1]
    return mock_completion(MESSAGES, wire_id)


# --- completions and usage -------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_completion_and_its_usage(
    case: Case, mock_root: Callable[..., str], transport: Transport
) -> None:
    root = mock_root(api_key=server_key(case))
    run, stats = requester(case, root, transport)
    record = await run.process(prompt())
    assert record is not None
    assert record["status"] == "ok", record["error"]
    text = expected_reply(case)
    assert record["completion"] == text
    assert record["finish_reason"] == "stop"
    assert record["attempts"] == 1
    # The system prompt counts as a message whichever way the format carries it.
    usage = {
        "input_tokens": count_prompt_tokens(MESSAGES),
        "output_tokens": count_text_tokens(text),
    }
    assert record["usage"] == usage
    prices = endpoint(case, root).model
    assert prices.input_per_mtok is not None and prices.output_per_mtok is not None
    cost = (
        usage["input_tokens"] * prices.input_per_mtok
        + usage["output_tokens"] * prices.output_per_mtok
    ) / 1e6
    assert record["cost_usd"] == pytest.approx(cost)
    assert stats.requests == 1
    served = httpx.get(f"{root}/stats").json()
    assert (served["ok"], served["tokens_in"], served["tokens_out"]) == (1, *usage.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_in_process_mock_speaks_the_same_format(case: Case) -> None:
    # The in-process transport routes by URL path as the server does.
    simulator = Simulator(MockSettings(api_key=server_key(case)))
    run, _ = requester(case, "mock://in-process", InProcessTransport(simulator))
    record = await run.process(prompt())
    assert record is not None and record["status"] == "ok", record
    assert record["completion"] == expected_reply(case)
    assert simulator.statistics().ok == 1


# --- rate limits, overloads and keys ---------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_429_is_a_rate_limit_error_with_the_providers_wait(
    case: Case, mock_root: Callable[..., str], transport: Transport
) -> None:
    # One request per ten seconds, and a bucket that holds one: the second must wait ~10 s.
    root = mock_root(requests_per_minute=6, burst_s=10.0)
    first = await send_once(case, root, transport)
    assert first.status == 200
    info = adapter(case).rate_limit_info(first.headers)
    if case.reports_remaining:
        assert info.remaining_requests == 0
        assert info.limit_requests == 6
    else:
        assert info.empty
    if case.provider in ("openai", "anthropic"):
        # When the bucket is full again; Anthropic's RFC 3339 time is in whole seconds.
        assert info.reset_requests_s == pytest.approx(10.0, abs=1.5)
    refused = await send_once(case, root, transport)
    with pytest.raises(RateLimitError) as caught:
        adapter(case).parse_response(endpoint(case, root), refused)
    error = caught.value
    assert error.status_code == 429
    assert error.retryable and not error.fatal
    if case.retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(case.retry_after, abs=0.5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_an_overload_is_retried(
    case: Case, mock_root: Callable[..., str], transport: Transport
) -> None:
    always = mock_root(overload_rate=1.0)
    with pytest.raises(case.overload) as caught:
        adapter(case).parse_response(
            endpoint(case, always), await send_once(case, always, transport)
        )
    assert caught.value.retryable and not caught.value.fatal
    # Seed 1 draws 0.13 then 0.85: the first attempt is overloaded, the second answered.
    half = mock_root(overload_rate=0.5, seed=1)
    run, stats = requester(case, half, transport)
    record = await run.process(prompt())
    assert record is not None and record["status"] == "ok", record
    assert record["completion"] == expected_reply(case)
    assert record["attempts"] == 2
    assert stats.retries == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_wrong_key_is_fatal(
    case: Case, mock_root: Callable[..., str], transport: Transport
) -> None:
    root = mock_root(api_key=server_key(case))
    run, stats = requester(case, root, transport, key=WRONG_KEY, attempts=5)
    record = await run.process(prompt())
    assert record is not None
    assert record["status"] == "error"
    assert record["attempts"] == 1  # never retried
    assert record["error"]["type"] in ("authentication_error", "permission_denied")
    assert run.fatal is not None
    assert stats.dead_models == [case.model]
    for secret in (WRONG_KEY, RIGHT_KEY, AWS_WRONG_KEY_ID):
        assert secret not in str(record)


# --- one job sprayed across providers, from the command line -----------------------------

SPRAY = {  # model → weight; every one priced in the registry, so the run's cost is known
    "anthropic:claude-haiku-4-5-20251001": 2.0,
    "gemini:gemini-2.5-flash": 1.0,
    "cohere:command-a-03-2025": 1.0,
    "bedrock:global.anthropic.claude-sonnet-4-6": 1.0,
}
SPRAY_PROMPTS = 300


def test_a_job_sprayed_across_providers_by_weight(
    tmp_path: Path, mock_root: Callable[..., str]
) -> None:
    root = mock_root()
    rows = [{"id": i, "prompt": f"question number {i}"} for i in range(SPRAY_PROMPTS)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    # Each provider's own base-URL variable points it at the one mock server.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("_API_KEY", "_BASE_URL")) and not name.startswith("AWS_")
    }
    env.update(
        LM_DELUGE_TOKENIZER="heuristic",
        ANTHROPIC_BASE_URL=base_url(root, "anthropic"),
        ANTHROPIC_API_KEY=RIGHT_KEY,
        GOOGLE_GEMINI_BASE_URL=base_url(root, "gemini"),
        GEMINI_API_KEY=RIGHT_KEY,
        CO_API_URL=base_url(root, "cohere"),
        CO_API_KEY=RIGHT_KEY,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=base_url(root, "bedrock"),
        **aws_env(RIGHT_KEY),
    )
    models = [arg for name, weight in SPRAY.items() for arg in ("-m", f"{name}={weight:g}")]
    # Unlimited run limits: providers without rate-limit headers are otherwise paced slowly.
    limits = ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    command = ["run", *models, *limits, "-i", "in.jsonl", "-o", "out.jsonl", "--json"]
    result = run_cli(*command, env=env)
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["failed"]) == (SPRAY_PROMPTS, 0)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == SPRAY_PROMPTS
    for record in records:
        messages = [{"role": "user", "content": f"question number {record['id']}"}]
        assert record["completion"] == mock_completion(messages, record["model"].split(":", 1)[1])
    counts = Counter(record["model"] for record in records)
    total_weight = sum(SPRAY.values())
    for name, weight in SPRAY.items():
        share = weight / total_weight
        expected = SPRAY_PROMPTS * share
        spread = math.sqrt(SPRAY_PROMPTS * share * (1 - share))
        # Five standard deviations: a fair draw lands outside about once in two million runs.
        assert abs(counts[name] - expected) <= 5 * spread, counts
    assert sum(record["cost_usd"] for record in records) == pytest.approx(
        summary["cost_usd"], abs=1e-6
    )
    assert httpx.get(f"{root}/stats").json()["ok"] == SPRAY_PROMPTS
    assert RIGHT_KEY.encode() not in result.stdout + result.stderr
