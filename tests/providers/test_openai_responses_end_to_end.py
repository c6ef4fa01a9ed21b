"""The Responses API adapter against the mock provider over a real socket: completions,
usage, 429s, overloads and refused keys, through the engine's Requester as a run sends them."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import httpx
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import OverloadedError, RateLimitError
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.simulator import MockSettings, Simulator, mock_completion
from lm_deluge_cli.mock.transport import InProcessTransport
from lm_deluge_cli.mock.wire import count_prompt_tokens, count_text_tokens
from lm_deluge_cli.providers import Endpoint, adapter_for
from lm_deluge_cli.providers.openai_responses import OpenAIResponsesAdapter
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

from .conftest import RecordRequester, one_model_requester

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_waiting")]

StartMockServer = Callable[..., tuple[str, Callable[[], None]]]

RIGHT_KEY = "sk-mock-right-key-0123456789"
WRONG_KEY = "sk-mock-wrong-key-9876543210"
# Priced in the registry; marked here as a model served by the Responses API.
MODEL = "openai:gpt-4.1-mini"
REASONING_MODEL = "openai:o3"
MESSAGES = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def endpoint(root: str, key: str = RIGHT_KEY, model: str = MODEL) -> Endpoint:
    """The model at the mock's OpenAI base URL, sent to the Responses API."""
    # The variable is named, so the key is read at a mock:// URL too (where OpenAI's own is
    # not): the simulator checks it.
    entry = ModelEntry(model, base_url=base_url(root, "openai"), api_key_env="OPENAI_API_KEY")
    resolved = resolve_endpoint(entry, env={"OPENAI_API_KEY": key})
    info = dataclasses.replace(resolved.model, wire_format="openai_responses")
    return dataclasses.replace(resolved, model=info)


def requester(
    target: Endpoint,
    transport: Transport,
    *,
    sampling: SamplingParams | None = None,
    attempts: int = 3,
) -> tuple[RecordRequester, RunStats]:
    adapter = adapter_for(target.wire_format)
    return one_model_requester(target, adapter, transport, sampling=sampling, attempts=attempts)


def prompt() -> Prompt:
    return Prompt(id="p1", line=1, messages=MESSAGES)


async def send_once(target: Endpoint, transport: Transport) -> HttpResponse:
    """One request through the adapter and transport, without the Requester's retries."""
    built = OpenAIResponsesAdapter().build_request(target, prompt(), SamplingParams(), 5)
    return await transport.send(built)


def expected_reply(model: str = MODEL) -> str:
    return mock_completion(MESSAGES, model.split(":", 1)[1])


# --- completions and usage -------------------------------------------------------------


async def test_a_completion_and_its_usage(
    mock_root: Callable[..., str], transport: Transport
) -> None:
    root = mock_root(api_key=RIGHT_KEY)
    target = endpoint(root)
    assert isinstance(adapter_for(target.wire_format), OpenAIResponsesAdapter)
    run, stats = requester(target, transport)
    record = await run.process(prompt())
    assert record is not None
    assert record["status"] == "ok", record["error"]
    text = expected_reply()
    # The system message went as instructions and still makes the same reply.
    assert record["completion"] == text
    assert record["finish_reason"] == "stop"
    assert record["attempts"] == 1
    usage = {
        "input_tokens": count_prompt_tokens(MESSAGES),
        "output_tokens": count_text_tokens(text),
    }
    assert record["usage"] == usage
    prices = target.model
    assert prices.input_per_mtok is not None and prices.output_per_mtok is not None
    cost = (
        usage["input_tokens"] * prices.input_per_mtok
        + usage["output_tokens"] * prices.output_per_mtok
    ) / 1e6
    assert record["cost_usd"] == pytest.approx(cost)
    assert stats.requests == 1
    served = httpx.get(f"{root}/stats").json()
    assert (served["ok"], served["tokens_in"], served["tokens_out"]) == (1, *usage.values())


async def test_a_reply_cut_short_reads_as_length(
    mock_root: Callable[..., str], transport: Transport
) -> None:
    # 5 is below the API's minimum of 16: the adapter raises it, or the mock would 400.
    run, _ = requester(endpoint(mock_root()), transport, sampling=SamplingParams(max_new_tokens=5))
    record = await run.process(prompt())
    assert record is not None and record["status"] == "ok", record
    assert record["finish_reason"] == "length"
    assert record["usage"]["output_tokens"] == 16
    assert expected_reply().startswith(record["completion"])


async def test_what_a_reasoning_model_cannot_take_is_left_out_not_refused(
    mock_root: Callable[..., str], transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    # The mock refuses `stop` with a 400, as the API does: it must never be sent.
    sampling = SamplingParams(temperature=0.7, stop=("END",), reasoning_effort="high")
    target = endpoint(mock_root(), model=REASONING_MODEL)
    run, _ = requester(target, transport, sampling=sampling)
    with caplog.at_level(logging.WARNING):
        first = await run.process(prompt())
        second = await run.process(Prompt(id="p2", line=2, messages=MESSAGES))
    for record in (first, second):
        assert record is not None and record["status"] == "ok", record
        assert record["completion"] == expected_reply(REASONING_MODEL)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Once, not once per prompt. The mock is not OpenAI's own URL, so temperature is not
    # warned about (a compatible server may take it); the adapter still leaves it out.
    assert warnings == [f"{REASONING_MODEL} does not support stop; leaving it out"]


async def test_in_process_mock_speaks_the_same_format() -> None:
    # The in-process transport routes by URL path as the server does.
    simulator = Simulator(MockSettings(api_key=RIGHT_KEY))
    run, _ = requester(endpoint("mock://in-process"), InProcessTransport(simulator))
    record = await run.process(prompt())
    assert record is not None and record["status"] == "ok", record
    assert record["completion"] == expected_reply()
    assert simulator.statistics().ok == 1


# --- rate limits, overloads and keys ---------------------------------------------------


async def test_a_429_is_a_rate_limit_error_with_openais_wait(
    mock_root: Callable[..., str], transport: Transport
) -> None:
    # One request per ten seconds, and a bucket that holds one: the second must wait ~10 s.
    root = mock_root(requests_per_minute=6, burst_s=10.0)
    target = endpoint(root)
    adapter = OpenAIResponsesAdapter()
    first = await send_once(target, transport)
    assert first.status == 200
    info = adapter.rate_limit_info(first.headers)
    assert (info.remaining_requests, info.limit_requests) == (0, 6)
    assert info.reset_requests_s == pytest.approx(10.0, abs=1.5)
    refused = await send_once(target, transport)
    with pytest.raises(RateLimitError) as caught:
        adapter.parse_response(target, refused)
    error = caught.value
    assert error.status_code == 429
    assert error.retryable and not error.fatal
    assert error.retry_after == pytest.approx(10.0, abs=0.5)


async def test_an_overload_is_retried(mock_root: Callable[..., str], transport: Transport) -> None:
    always = endpoint(mock_root(overload_rate=1.0))
    with pytest.raises(OverloadedError) as caught:
        OpenAIResponsesAdapter().parse_response(always, await send_once(always, transport))
    assert caught.value.retryable and not caught.value.fatal
    # Seed 1 draws 0.13 then 0.85: the first attempt is overloaded, the second answered.
    run, stats = requester(endpoint(mock_root(overload_rate=0.5, seed=1)), transport)
    record = await run.process(prompt())
    assert record is not None and record["status"] == "ok", record
    assert record["completion"] == expected_reply()
    assert record["attempts"] == 2
    assert stats.retries == 1


async def test_a_wrong_key_is_fatal(mock_root: Callable[..., str], transport: Transport) -> None:
    root = mock_root(api_key=RIGHT_KEY)
    run, stats = requester(endpoint(root, WRONG_KEY), transport, attempts=5)
    record = await run.process(prompt())
    assert record is not None
    assert record["status"] == "error"
    assert record["attempts"] == 1  # never retried
    assert record["error"]["type"] == "authentication_error"
    assert run.fatal is not None
    assert stats.dead_models == [MODEL]
    for secret in (WRONG_KEY, RIGHT_KEY):
        assert secret not in str(record)
