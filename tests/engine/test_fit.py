"""A line that can never fit a model's tokens/min or context window is refused before it is
sent, and goes to a model it fits where the job has one; the lines behind it are not held."""

from __future__ import annotations

import random
from collections.abc import Sequence

import anyio
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.fit import LineFit, answer_misfit
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, SamplingParams
from tests.engine.test_requester import ScriptedTransport, ok_body

ENV = {"OPENAI_API_KEY": "sk-test-0000000000"}
# gpt-4o's context window is 128,000 tokens; gpt-4.1-mini's 1,047,576.
SMALL_WINDOW = "openai:gpt-4o"
LARGE_WINDOW = "openai:gpt-4.1-mini"
RUN_TOKENS_PER_MINUTE = 20_000.0


@pytest.fixture(autouse=True)
def heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quarter of a token per byte: sizes below are exact."""
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
    monkeypatch.setattr("lm_deluge_cli.tokens._encoder", None)
    monkeypatch.setattr("lm_deluge_cli.tokens._resolved", False)


def slot(
    name: str,
    run: RateLimiter,
    *,
    own_tokens: float | None = None,
    max_new_tokens: int = 500,
    weight: float = 1.0,
) -> ModelSlot:
    own = RateLimiter(None, own_tokens, name=name) if own_tokens is not None else None
    return ModelSlot(
        endpoint=resolve_endpoint(ModelEntry(name=name), env=ENV),
        adapter=adapter_for("openai_chat"),
        transport=ScriptedTransport([HttpResponse(200, {}, ok_body())]),
        weight=weight,
        sampling=SamplingParams(max_new_tokens=max_new_tokens),
        limits=LimiterChain(own, run) if own is not None else LimiterChain(run),
        headers_describe=(True, False) if own is not None else (True,),
    )


def requester(slots: Sequence[ModelSlot]) -> Requester:
    return Requester(
        slots,
        max_concurrent_requests=4,
        max_attempts=2,
        request_timeout=5,
        retry_other_model=False,
        stats=RunStats(),
        rng=random.Random(1),
    )


def line(tokens: int, number: int = 1, model: str | None = None) -> Prompt:
    """A prompt of about `tokens` tokens (4 bytes each; 7 more for the framing)."""
    text = "abcd" * tokens
    return Prompt(id=number, line=number, messages=[{"role": "user", "content": text}], model=model)


def sent(s: ModelSlot) -> int:
    assert isinstance(s.transport, ScriptedTransport)
    return len(s.transport.requests)


# --- LineFit ---------------------------------------------------------------------------


def test_a_line_needing_more_than_a_minute_of_tokens_is_named_with_its_numbers_and_fixes() -> None:
    s = slot(LARGE_WINDOW, RateLimiter(None, RUN_TOKENS_PER_MINUTE, name="run"))
    assert LineFit(line(19_000)).problem(s, s.sampling) is None
    problem = LineFit(line(25_000)).problem(s, s.sampling)
    assert problem is not None
    # 25,000 + 7 of framing, plus all of max_new_tokens held for the answer.
    assert "~25,507 tokens" in problem and "~25,007 of prompt" in problem and "500" in problem
    assert "the run's limit of 20,000 tokens/min" in problem
    assert "--max-tokens-per-minute" in problem
    assert "shorten the line" in problem and "lower max_new_tokens" in problem


def test_the_answer_held_counts_toward_the_minute() -> None:
    s = slot(LARGE_WINDOW, RateLimiter(None, RUN_TOKENS_PER_MINUTE), max_new_tokens=15_000)
    assert LineFit(line(4_000)).problem(s, s.sampling) is None
    assert "15,000 held for the answer" in (LineFit(line(6_000)).problem(s, s.sampling) or "")


def test_a_model_s_own_limit_is_named_where_it_is_set() -> None:
    s = slot(LARGE_WINDOW, RateLimiter(None, None, name="run"), own_tokens=10_000)
    problem = LineFit(line(12_000)).problem(s, s.sampling) or ""
    assert f"{LARGE_WINDOW}'s limit of 10,000 tokens/min" in problem
    assert f"max_tokens_per_minute in {LARGE_WINDOW}'s [[models]] entry" in problem


def test_a_prompt_longer_than_the_context_window_is_refused_unlimited() -> None:
    s = slot(SMALL_WINDOW, RateLimiter(None, None, name="run"))
    assert LineFit(line(127_000)).problem(s, s.sampling) is None
    problem = LineFit(line(130_000)).problem(s, s.sampling) or ""
    assert "~130,007 tokens" in problem and "context window of 128,000" in problem


def test_an_answer_longer_than_the_context_window_is_refused() -> None:
    s = slot(SMALL_WINDOW, RateLimiter(None, None, name="run"), max_new_tokens=100_000_000)
    problem = LineFit(line(10)).problem(s, s.sampling) or ""
    assert "100,000,000" in problem and "128,000" in problem and "lower max_new_tokens" in problem
    assert answer_misfit("m", load_registry().lookup(SMALL_WINDOW), 127_000) is None


def test_a_short_text_line_is_not_counted() -> None:
    # The bound found without counting fits: the tokenizer is not run at planning.
    s = slot(LARGE_WINDOW, RateLimiter(None, RUN_TOKENS_PER_MINUTE, name="run"))
    fit = LineFit(line(100))
    assert fit.problem(s, s.sampling) is None
    assert fit.counted(s.endpoint.wire_format) is None


# --- In the requester --------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_line_is_refused_before_sending_and_the_lines_behind_it_go_at_once() -> None:
    s = slot(LARGE_WINDOW, RateLimiter(None, RUN_TOKENS_PER_MINUTE, name="run"))
    r = requester([s])
    # Sent, the big line would put the limiter ~25,000 tokens in debt: the next lines
    # would wait over a minute. Refused, they go at once.
    with anyio.fail_after(5):
        big = await r.process(line(25_000))
        assert big is not None
        record = to_json(big)
        assert sent(s) == 0, "nothing was sent for it"
        assert record["status"] == "error" and record["attempts"] == 0
        assert record["error"]["type"] == "invalid_input"
        assert record["error"]["message"].startswith("line 1: not sent: the request needs")
        for number in range(2, 6):
            small = await r.process(line(50, number))
            assert small is not None and small.status == "ok"
    assert sent(s) == 4


@pytest.mark.anyio
async def test_a_line_goes_to_a_model_it_fits_or_is_refused_if_it_fits_none() -> None:
    run = RateLimiter(None, None, name="run")
    small = slot(SMALL_WINDOW, run, own_tokens=RUN_TOKENS_PER_MINUTE, weight=100.0)
    large = slot(LARGE_WINDOW, run, weight=0.001)
    r = requester([small, large])
    # Drawn for the small model almost always: 25,000 tokens fit only the large one.
    for number in range(1, 6):
        result = await r.process(line(25_000, number))
        assert result is not None and result.status == "ok" and result.model == LARGE_WINDOW
    assert sent(small) == 0 and sent(large) == 5
    # Pinned to the model it does not fit: refused, not moved.
    pinned = await r.process(line(25_000, 6, model=SMALL_WINDOW))
    assert pinned is not None and pinned.error is not None
    assert pinned.error.type == "invalid_input"
    # Longer than both windows allow.
    neither = await r.process(line(1_100_000, 7))
    assert neither is not None and neither.error is not None
    assert "it fits none of the job's models: on openai:gpt-4o" in neither.error.message
    assert "on openai:gpt-4.1-mini, the prompt is ~1,100,007 tokens" in neither.error.message
    assert sent(small) == 0 and sent(large) == 5


class HeldTransport(ScriptedTransport):
    """Answers once `release` is set, so a test can look at the run while it waits."""

    def __init__(self) -> None:
        super().__init__([HttpResponse(200, {}, ok_body())])
        self.release = anyio.Event()
        self.arrived = anyio.Event()

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.arrived.set()
        await self.release.wait()
        return await super().send(request)


@pytest.mark.anyio
async def test_a_line_that_fits_but_holds_much_of_the_minute_is_named_while_it_does() -> None:
    s = slot(LARGE_WINDOW, RateLimiter(None, RUN_TOKENS_PER_MINUTE, name="run"))
    held = s.transport = HeldTransport()
    r = requester([s])
    async with anyio.create_task_group() as group:
        group.start_soon(r.process, line(50, 1))
        await held.arrived.wait()
        assert r.stats.snapshot().big_line is None, "a small line is not named"
        held.release.set()
    held.release = anyio.Event()
    held.arrived = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(r.process, line(12_000, 2))
        await held.arrived.wait()
        big = r.stats.snapshot().big_line
        # 12,007 of prompt and 500 held for the answer: ~38 s of 20,000 tokens/min.
        assert big is not None and big.line == 2 and big.tokens == 12_507 and big.sent
        assert big.model is None and 37.0 < big.left_s <= 37.6
        held.release.set()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
