"""Structured outputs and yes/no answers in every chat format: a request built by our own
adapter, answered by the Simulator, read back by the same adapter."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.mock.formats import base_url, match_route
from lm_deluge_cli.mock.simulator import MockSettings, Simulator
from lm_deluge_cli.mock.wire import count_text_tokens, mock_completion
from lm_deluge_cli.providers import Adapter, Endpoint, adapter_for
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.results import Completion
from lm_deluge_cli.schema import completion_violation
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

ROOT = "http://mock.test"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAMOCK000000000000",
    "AWS_SECRET_ACCESS_KEY": "mock-secret-not-checked",
    "AWS_REGION": "us-east-1",
}
# Closed and fully required: every provider's strict structured outputs take it.
STRICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "role": {"type": "string", "enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "role", "tags", "address"],
    "additionalProperties": False,
}
# Bounds and lengths: sent non-strict, or (Anthropic) through the forced tool.
BOUNDED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "string", "minLength": 2, "maxLength": 12},
        "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3},
    },
    "required": ["score", "label"],
}
MESSAGES = [
    {"role": "system", "content": "You extract data."},
    {"role": "user", "content": "Alice Martin, 34, admin, lives in Lyon 69001."},
]


@dataclass(frozen=True)
class Case:
    """A model of the registry, and the wire format (and flags) it is sent with."""

    name: str
    model: str
    env: dict[str, str]
    wire_format: str | None = None  # another wire format than the registry's
    flags: tuple[tuple[str, Any], ...] = ()  # model fields to override


CASES = [
    Case("openai", "openai:gpt-4.1-mini", {"OPENAI_API_KEY": "k"}),
    Case("responses", "openai:gpt-4.1-mini", {"OPENAI_API_KEY": "k"}, "openai_responses"),
    Case(
        "anthropic-native",
        "anthropic:claude-haiku-4-5-20251001",
        {"ANTHROPIC_API_KEY": "k"},
        flags=(("supports_json_schema", True),),
    ),
    Case(
        "anthropic-tool",
        "anthropic:claude-haiku-4-5-20251001",
        {"ANTHROPIC_API_KEY": "k"},
        flags=(("supports_json_schema", False),),
    ),
    Case(
        "anthropic-prompt",
        "anthropic:claude-haiku-4-5-20251001",
        {"ANTHROPIC_API_KEY": "k"},
        flags=(("supports_json_schema", False), ("adaptive_thinking", True)),
    ),
    Case("gemini", "gemini:gemini-2.5-flash", {"GEMINI_API_KEY": "k"}),
    Case("mistral", "mistral:mistral-small-2506", {"MISTRAL_API_KEY": "k"}),
    Case("cohere", "cohere:command-a-03-2025", {"CO_API_KEY": "k"}),
    Case("bedrock", "bedrock:global.anthropic.claude-sonnet-4-6", AWS_ENV),
]
IDS = [case.name for case in CASES]


def endpoint(case: Case) -> Endpoint:
    provider = case.model.split(":", 1)[0]
    entry = ModelEntry(name=case.model, base_url=base_url(ROOT, provider))
    resolved = resolve_endpoint(entry, env=case.env)
    info = dataclasses.replace(resolved.model, **dict(case.flags))
    if case.wire_format is not None:
        info = dataclasses.replace(info, wire_format=case.wire_format)
    return dataclasses.replace(resolved, model=info)


def adapter(target: Endpoint) -> Adapter:
    if target.wire_format == "bedrock_anthropic":
        return BedrockAnthropicAdapter(env=AWS_ENV)
    return adapter_for(target.wire_format)


def exchange(
    case: Case,
    sampling: SamplingParams,
    simulator: Simulator | None = None,
    messages: list[dict[str, Any]] = MESSAGES,
) -> tuple[Completion, dict[str, Any]]:
    """(what the adapter reads, the parsed body): one request through the Simulator."""
    target = endpoint(case)
    speaker = adapter(target)
    built = speaker.build_request(target, Prompt(id="p", line=1, messages=messages), sampling, 5)
    url = urlsplit(built.url)
    route = match_route(url.path)
    assert route is not None, url.path
    sim = simulator or Simulator(MockSettings())
    headers = {name.lower(): value for name, value in built.headers.items()}
    answer = sim.handle(route, headers, built.body, dict(parse_qsl(url.query)))
    assert answer.status == 200, answer.body
    response = HttpResponse(answer.status, answer.headers, answer.body)
    return speaker.parse_response(target, response), orjson.loads(answer.body)


# --- structured outputs -----------------------------------------------------------------


@pytest.mark.parametrize("schema", [STRICT, BOUNDED], ids=["strict", "bounded"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_schema_is_answered_with_matching_json(case: Case, schema: dict[str, Any]) -> None:
    completion, _ = exchange(case, SamplingParams(json_schema=schema))
    assert completion.text is not None
    assert completion_violation(completion.text, schema) is None, completion.text
    assert completion.finish_reason == "stop"
    # Billed as the JSON text is counted (a forced tool's input, as the same compact JSON).
    assert completion.usage.output_tokens == count_text_tokens(completion.text)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_same_prompt_gets_the_same_json_and_another_prompt_other_json(case: Case) -> None:
    sampling = SamplingParams(json_schema=STRICT)
    first, _ = exchange(case, sampling)
    again, _ = exchange(case, sampling)
    other_messages = [{"role": "user", "content": "Bob Stone, 51, user, Paris"}]
    other, _ = exchange(case, sampling, messages=other_messages)
    assert first.text == again.text
    assert first.text != other.text


def test_anthropic_carries_the_schema_as_its_format_says() -> None:
    _, body = exchange(CASES[2], SamplingParams(json_schema=STRICT))
    assert body["content"][0]["type"] == "text"
    assert body["stop_reason"] == "end_turn"
    tool, body = exchange(CASES[3], SamplingParams(json_schema=BOUNDED))
    assert body["stop_reason"] == "tool_use"
    [block] = body["content"]
    assert block["type"] == "tool_use" and block["name"] == "respond"
    assert tool.text == orjson.dumps(block["input"]).decode()


def test_a_cut_short_forced_tool_says_max_tokens() -> None:
    _, body = exchange(CASES[3], SamplingParams(json_schema=BOUNDED, max_new_tokens=2))
    assert body["stop_reason"] == "max_tokens"
    assert body["usage"]["output_tokens"] == 2


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_json_cut_short_is_a_length_finish(case: Case) -> None:
    completion, body = exchange(case, SamplingParams(json_schema=STRICT, max_new_tokens=16))
    assert completion.usage.output_tokens == 16
    assert completion_violation(completion.text, STRICT) is not None
    content = body.get("content")
    if isinstance(content, list) and content[0]["type"] == "tool_use":
        # The forced tool's input, cut short, arrives empty.
        assert body["stop_reason"] == "max_tokens" and content[0]["input"] == {}
    assert completion.finish_reason == "length"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_json_mode_is_answered_with_an_object(case: Case) -> None:
    completion, _ = exchange(case, SamplingParams(json_mode=True))
    assert completion_violation(completion.text, {"type": "object"}) is None, completion.text


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_request_without_json_still_gets_the_sentence(case: Case) -> None:
    completion, _ = exchange(case, SamplingParams())
    assert completion.text == mock_completion(MESSAGES, endpoint(case).model.wire_id)


# --- the schema_violation fault ---------------------------------------------------------


@pytest.mark.parametrize("schema", [STRICT, BOUNDED], ids=["strict", "bounded"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_schema_violation_breaks_the_schema(case: Case, schema: dict[str, Any]) -> None:
    simulator = Simulator(MockSettings(faults={"schema_violation": 1.0}))
    completion, _ = exchange(case, SamplingParams(json_schema=schema), simulator)
    assert completion.text is not None
    assert completion_violation(completion.text, schema) is not None
    assert orjson.loads(completion.text) is not None  # well-formed JSON all the same
    stats = simulator.statistics()
    assert (stats.malformed, stats.ok) == (1, 0)
    assert stats.tokens_out == completion.usage.output_tokens


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_schema_violation_without_a_schema_answers_normally(case: Case) -> None:
    simulator = Simulator(MockSettings(faults={"schema_violation": 1.0}))
    completion, _ = exchange(case, SamplingParams(), simulator)
    assert completion.text == mock_completion(MESSAGES, endpoint(case).model.wire_id)
    assert (simulator.statistics().malformed, simulator.statistics().ok) == (0, 1)


def test_schema_violation_goes_through_the_fault_draw() -> None:
    settings = MockSettings(faults={"schema_violation": 1.0}, fault_first_n=2)
    simulator = Simulator(settings)
    sampling = SamplingParams(json_schema=STRICT)
    texts = [exchange(CASES[0], sampling, simulator)[0].text for _ in range(4)]
    broken = [completion_violation(text, STRICT) is not None for text in texts]
    assert broken == [True, True, False, False]
    assert (simulator.statistics().malformed, simulator.statistics().ok) == (2, 2)


def test_schema_violation_at_half_rate_breaks_about_half() -> None:
    simulator = Simulator(MockSettings(faults={"schema_violation": 0.5}, seed=7))
    sampling = SamplingParams(json_schema=STRICT)
    for _ in range(200):
        exchange(CASES[0], sampling, simulator)
    assert 70 <= simulator.statistics().malformed <= 130


# --- yes/no questions -------------------------------------------------------------------


def question(i: int) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Answer Yes or No."},
        {"role": "user", "content": f"Is statement {i} relevant to the query? yes or no"},
    ]


YES_NO_CASES = [CASES[0], CASES[1], CASES[5]]  # OpenAI chat, Responses, Gemini


@pytest.mark.parametrize("case", YES_NO_CASES, ids=[c.name for c in YES_NO_CASES])
def test_yes_no_answers_carry_consistent_logprobs(case: Case) -> None:
    sampling = SamplingParams(logprobs=True, top_logprobs=5, max_new_tokens=5)
    answers = set()
    p_yes_seen = set()
    for i in range(30):
        completion, _ = exchange(case, sampling, messages=question(i))
        assert completion.text in ("Yes", "No")
        answers.add(completion.text)
        [step] = completion.logprobs
        top = {alt["token"]: alt["logprob"] for alt in step["top_logprobs"]}
        assert {"Yes", "No"} <= set(top) and len(top) == 5
        assert step["token"] == completion.text
        assert step["logprob"] == max(top.values()) == top[completion.text]
        assert sum(math.exp(lp) for lp in top.values()) <= 1.0
        p_yes = math.exp(top["Yes"]) / (math.exp(top["Yes"]) + math.exp(top["No"]))
        assert (p_yes > 0.5) == (completion.text == "Yes")
        p_yes_seen.add(round(p_yes, 4))
    assert answers == {"Yes", "No"}
    assert len(p_yes_seen) >= 25


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_yes_no_without_logprobs_is_one_word_in_every_format(case: Case) -> None:
    completion, _ = exchange(case, SamplingParams(), messages=question(3))
    again, _ = exchange(case, SamplingParams(), messages=question(3))
    assert completion.text in ("Yes", "No") and again.text == completion.text
    assert completion.usage.output_tokens == 1


def test_cohere_returns_the_chosen_tokens_logprobs() -> None:
    completion, _ = exchange(CASES[7], SamplingParams(logprobs=True), messages=question(1))
    [item] = completion.logprobs
    assert item["text"] == completion.text and item["logprobs"][0] < 0


def test_gemini_logprobs_come_as_a_logprobs_result() -> None:
    sampling = SamplingParams(logprobs=True, top_logprobs=2)
    _, body = exchange(CASES[5], sampling, messages=question(2))
    result = body["candidates"][0]["logprobsResult"]
    [chosen] = result["chosenCandidates"]
    [step] = result["topCandidates"]
    assert {c["token"] for c in step["candidates"]} == {"Yes", "No"}
    assert chosen["token"] == step["candidates"][0]["token"]
    assert body["candidates"][0]["avgLogprobs"] == chosen["logProbability"]


def test_a_question_without_yes_or_no_gets_the_sentence() -> None:
    messages = [{"role": "user", "content": "Is the sky blue?"}]
    completion, _ = exchange(CASES[0], SamplingParams(), messages=messages)
    assert completion.text == mock_completion(messages, "gpt-4.1-mini")
