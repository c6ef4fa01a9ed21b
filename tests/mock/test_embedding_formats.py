"""The embeddings APIs of the simulator (OpenAI, Mistral, Voyage, Cohere v2, Gemini) against
the providers' documented request bodies, driven directly with a fake clock."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.formats import base_url, match_route
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator
from lm_deluge_cli.mock.wire import (
    DEFAULT_DIMENSIONS,
    count_text_tokens,
    embedding_vector,
)

KEY = "sk-mock-embeddings-key-0123"
GEMINI_MODEL = "gemini-embedding-001"
TEXTS = ["The quick brown fox", "jumps over the lazy dog", "The quick brown fox"]

PATHS = {
    "openai": "/v1/embeddings",
    "mistral": "/mistral/v1/embeddings",
    "voyage": "/voyage/v1/embeddings",
    "cohere": "/cohere/v2/embed",
    "gemini": f"/gemini/v1beta/models/{GEMINI_MODEL}:batchEmbedContents",
}
MODELS = {
    "openai": "text-embedding-3-small",
    "mistral": "mistral-embed",
    "voyage": "voyage-3.5",
    "cohere": "embed-v4.0",
    "gemini": GEMINI_MODEL,
}
PROVIDERS = list(PATHS)
# Each API's name for the vector size, and where it puts the vectors.
DIMENSIONS_FIELD = {
    "openai": "dimensions",
    "mistral": "output_dimension",
    "voyage": "output_dimension",
    "cohere": "output_dimension",
    "gemini": "outputDimensionality",
}
ANSWER_FIELD = {
    "openai": "data",
    "mistral": "data",
    "voyage": "data",
    "cohere": "embeddings",
    "gemini": "embeddings",
}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=FakeClock())


def body(provider: str, texts: list[str], dimensions: int | None = None) -> dict[str, Any]:
    """The documented request body of `provider` for these texts."""
    model = MODELS[provider]
    extra = {} if dimensions is None else {DIMENSIONS_FIELD[provider]: dimensions}
    if provider == "cohere":
        return {
            "model": model,
            "texts": texts,
            "input_type": "search_document",
            "embedding_types": ["float"],
            **extra,
        }
    if provider == "gemini":
        return {
            "requests": [
                {
                    "model": f"models/{model}",
                    "content": {"parts": [{"text": text}]},
                    "taskType": "RETRIEVAL_DOCUMENT",
                    **extra,
                }
                for text in texts
            ]
        }
    if provider == "voyage":
        return {"model": model, "input": texts, "input_type": "document", **extra}
    return {"model": model, "input": texts, "encoding_format": "float", **extra}


def credentials(provider: str, key: str = KEY) -> dict[str, str]:
    if provider == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


def send(
    sim: Simulator,
    provider: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    path: str | None = None,
) -> tuple[SimResponse, Any]:
    route = match_route(path or PATHS[provider])
    assert route is not None
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    sent = credentials(provider) if headers is None else dict(headers)
    response = sim.handle(route, sent, raw)
    return response, orjson.loads(response.body) if response.body else None


def vectors(provider: str, answer: Any) -> list[list[float]]:
    if provider == "cohere":
        return list(answer["embeddings"]["float"])
    if provider == "gemini":
        return [item["values"] for item in answer["embeddings"]]
    assert [item["index"] for item in answer["data"]] == list(range(len(answer["data"])))
    assert {item["object"] for item in answer["data"]} == {"embedding"}
    return [item["embedding"] for item in answer["data"]]


# --- routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "model"),
    [
        ("/v1/embeddings", "openai_embeddings", None),
        ("/embeddings", "openai_embeddings", None),
        ("/openai/v1/embeddings", "openai_embeddings", None),
        ("/mistral/v1/embeddings", "mistral_embeddings", None),
        ("/voyage/v1/embeddings", "voyage_embeddings", None),
        ("/v2/embed", "cohere_embed", None),
        ("/cohere/v2/embed", "cohere_embed", None),
        ("/gemini/v1beta/models/m:batchEmbedContents", "gemini_batch_embed", "m"),
        ("/v1/models/m:batchEmbedContents", "gemini_batch_embed", "m"),
        ("/gemini/v1beta/models/m:embedContent", "gemini_embed", "m"),
    ],
)
def test_each_embeddings_path_reaches_its_format(path: str, name: str, model: str | None) -> None:
    route = match_route(path)
    assert route is not None
    assert (route.format.name, route.model) == (name, model)


def test_voyage_base_url_leads_to_its_embeddings() -> None:
    url = base_url("http://127.0.0.1:8000/", "voyage") + "/embeddings"
    route = match_route(url.removeprefix("http://127.0.0.1:8000"))
    assert route is not None and route.format.name == "voyage_embeddings"


# --- answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_unit_vector_per_text_in_order(provider: str) -> None:
    sim = make(api_key=KEY)
    response, answer = send(sim, provider, body(provider, TEXTS))
    assert response.status == 200, answer
    assert response.headers["content-type"] == "application/json"
    found = vectors(provider, answer)
    assert len(found) == len(TEXTS)
    for vector in found:
        assert len(vector) == DEFAULT_DIMENSIONS
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, abs_tol=1e-4)
        assert all(round(v, 6) == v for v in vector)
    # The same text gets the same vector, another text another one.
    assert found[0] == found[2] != found[1]
    assert found[0] == embedding_vector(MODELS[provider], TEXTS[0], DEFAULT_DIMENSIONS)
    stats = sim.statistics()
    assert (stats.ok, stats.inputs_embedded) == (1, 3)
    assert stats.tokens_in == sum(count_text_tokens(t) for t in TEXTS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_requested_dimensions_are_honoured(provider: str) -> None:
    response, answer = send(make(), provider, body(provider, TEXTS[:1], dimensions=256))
    assert response.status == 200, answer
    assert len(vectors(provider, answer)[0]) == 256


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("dimensions", [0, -3, "64", 1.5, True])
def test_bad_dimensions_are_refused(provider: str, dimensions: Any) -> None:
    payload = body(provider, TEXTS[:1])
    if provider == "gemini":
        payload["requests"][0]["outputDimensionality"] = dimensions
    else:
        payload[DIMENSIONS_FIELD[provider]] = dimensions
    response, _ = send(make(), provider, payload)
    assert response.status == (422 if provider == "mistral" else 400)


def test_vectors_are_deterministic_across_simulators() -> None:
    first = vectors("openai", send(make(), "openai", body("openai", TEXTS))[1])
    second = vectors("openai", send(make(seed=7), "openai", body("openai", TEXTS))[1])
    assert first == second


def test_vectors_are_pinned() -> None:
    """The exact values, as written before: the vectors answer byte for byte the same."""
    assert embedding_vector("text-embedding-3-small", "The quick brown fox.", 8) == [
        0.641346,
        -0.159349,
        0.437085,
        -0.36658,
        0.139363,
        -0.005587,
        -0.433266,
        0.175172,
    ]
    long = embedding_vector("text-embedding-3-small", "ünïcödé 😀", 3072)
    digest = hashlib.sha256(orjson.dumps(long)).hexdigest()
    assert digest == "46ca626fa6e7a7e4e867efdff8685765bf948513096decd110cdbe997cef6f53"


def test_usage_in_each_providers_own_shape() -> None:
    tokens = sum(count_text_tokens(t) for t in TEXTS)
    answers = {p: send(make(), p, body(p, TEXTS))[1] for p in PROVIDERS}
    assert answers["openai"]["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert answers["openai"]["object"] == "list"
    assert answers["openai"]["model"] == MODELS["openai"]
    assert answers["mistral"]["usage"] == {
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
    }
    assert len(answers["mistral"]["id"]) == 32
    assert answers["voyage"]["usage"] == {"total_tokens": tokens}
    cohere = answers["cohere"]
    assert cohere["meta"]["billed_units"] == {"input_tokens": tokens}
    assert cohere["meta"]["api_version"]["version"] == "2"
    assert cohere["response_type"] == "embeddings_by_type"
    assert cohere["texts"] == TEXTS
    assert set(answers["gemini"]) == {"embeddings"}  # Gemini reports no usage


def test_a_single_string_input_is_one_text() -> None:
    response, answer = send(make(), "openai", {"model": "m", "input": "just one"})
    assert response.status == 200
    assert len(answer["data"]) == 1


def test_openai_base64_is_little_endian_float32() -> None:
    payload = {**body("openai", TEXTS[:1], dimensions=8), "encoding_format": "base64"}
    _, answer = send(make(), "openai", payload)
    decoded = struct.unpack("<8f", base64.b64decode(answer["data"][0]["embedding"]))
    expected = embedding_vector(MODELS["openai"], TEXTS[0], 8)
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(decoded, expected, strict=True))


def test_cohere_writes_every_requested_embedding_type() -> None:
    payload = {**body("cohere", TEXTS[:2], 16), "embedding_types": ["float", "int8", "ubinary"]}
    response, answer = send(make(), "cohere", payload)
    assert response.status == 200
    embeddings = answer["embeddings"]
    assert set(embeddings) == {"float", "int8", "ubinary"}
    assert all(-128 <= v <= 127 for v in embeddings["int8"][0])
    assert len(embeddings["ubinary"][0]) == 2  # 16 sign bits, 8 to a byte


def test_gemini_embed_content_answers_one_vector() -> None:
    path = f"/v1beta/models/{GEMINI_MODEL}:embedContent"
    payload = {"content": {"parts": [{"text": TEXTS[0]}]}, "output_dimensionality": 8}
    response, answer = send(make(), "gemini", payload, path=path)
    assert response.status == 200
    assert answer == {"embedding": {"values": embedding_vector(GEMINI_MODEL, TEXTS[0], 8)}}


def test_gemini_takes_the_key_from_the_query_too() -> None:
    route = match_route(PATHS["gemini"])
    assert route is not None
    sim = make(api_key=KEY)
    response = sim.handle(route, {}, orjson.dumps(body("gemini", TEXTS)), {"key": KEY})
    assert response.status == 200


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "limit"),
    [("openai", 2048), ("mistral", 512), ("voyage", 1000), ("cohere", 96), ("gemini", 100)],
)
def test_batch_limits(provider: str, limit: int) -> None:
    texts = [f"text {i}" for i in range(limit + 1)]
    ok, _ = send(make(), provider, body(provider, texts[:limit]))
    assert ok.status == 200
    refused, answer = send(make(), provider, body(provider, texts))
    assert refused.status == 400
    if provider == "openai":
        assert answer["error"]["code"] == "array_above_max_length"
        assert answer["error"]["param"] == "input"
    elif provider == "mistral":
        assert answer["code"] == "3210"
    elif provider == "voyage":
        assert "1000" in answer["detail"]
    elif provider == "cohere":
        assert answer["message"].startswith("invalid request: ")
    else:
        assert answer["error"]["status"] == "INVALID_ARGUMENT"
        assert "at most 100 requests" in answer["error"]["message"]


def test_openai_and_mistral_limit_the_tokens_of_a_request() -> None:
    long_text = "x" * 4 * 9000  # 9,000 tokens
    _, answer = send(make(), "mistral", {"model": "mistral-embed", "input": [long_text] * 2})
    assert answer["code"] == "3211"
    response, answer = send(make(), "openai", {"model": "m", "input": [long_text] * 34})
    assert response.status == 400
    assert answer["error"]["code"] == "max_tokens_per_request"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["not json", "no texts", "empty list", "empty string"])
def test_bad_bodies_are_refused_in_the_providers_format(provider: str, case: str) -> None:
    payload: Any = body(provider, TEXTS)
    if case == "not json":
        payload = b"{not json"
    elif provider == "gemini":
        payload["requests"] = {"no texts": None, "empty list": []}.get(case, payload["requests"])
        if case == "empty string":
            payload["requests"][0]["content"]["parts"][0]["text"] = ""
    else:
        field = "texts" if provider == "cohere" else "input"
        if case == "no texts":
            del payload[field]
        else:
            payload[field] = [] if case == "empty list" else [""]
    response, answer = send(make(), provider, payload)
    assert response.status in ((400, 422) if provider == "mistral" else (400,))
    assert isinstance(answer, dict)
    assert make().statistics().ok == 0


def test_cohere_requires_an_input_type() -> None:
    payload = body("cohere", TEXTS)
    del payload["input_type"]
    response, answer = send(make(), "cohere", payload)
    assert response.status == 400
    assert "input_type" in answer["message"]


def test_gemini_requests_must_name_the_urls_model() -> None:
    payload = body("gemini", TEXTS)
    payload["requests"][1]["model"] = "models/another-model"
    response, answer = send(make(), "gemini", payload)
    assert response.status == 400
    assert "requests[1].model" in answer["error"]["message"]


# --- keys, limits and faults -----------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_key_is_refused_as_the_providers_chat_refuses_it(provider: str) -> None:
    sim = make(api_key=KEY)
    response, answer = send(sim, provider, body(provider, TEXTS), credentials(provider, "wrong"))
    if provider == "gemini":
        assert response.status == 400
        assert answer["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    else:
        assert response.status == 401
    missing, _ = send(sim, provider, body(provider, TEXTS), {})
    assert missing.status == (403 if provider == "gemini" else 401)
    assert sim.statistics().ok == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_second_request_over_the_rpm_limit_gets_the_providers_429(provider: str) -> None:
    sim = make(requests_per_minute=60, burst_s=1.0)
    first, _ = send(sim, provider, body(provider, TEXTS))
    second, answer = send(sim, provider, body(provider, TEXTS))
    assert (first.status, second.status) == (200, 429)
    assert sim.statistics().rate_limited == 1
    if provider == "openai":
        assert second.headers["retry-after"] == "1"
        assert first.headers["x-ratelimit-limit-requests"] == "60"
        assert answer["error"]["code"] == "rate_limit_exceeded"
    elif provider == "voyage":
        assert second.headers["retry-after"] == "1"
        assert "detail" in answer
    elif provider == "mistral":
        assert first.headers["x-ratelimit-limit-req-minute"] == "60"
        assert answer["type"] == "rate_limited"
    elif provider == "gemini":
        assert answer["error"]["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert "message" in answer


def test_a_request_costs_its_texts_tokens() -> None:
    tokens = sum(count_text_tokens(t) for t in TEXTS)
    sim = make(tokens_per_minute=tokens * 60, burst_s=1.0)
    assert send(sim, "openai", body("openai", TEXTS))[0].status == 200
    refused, answer = send(sim, "openai", body("openai", TEXTS))
    assert refused.status == 429
    assert f"Requested {tokens}" in answer["error"]["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_fields_strips_the_vectors(provider: str) -> None:
    sim = make(faults={"missing_fields": 1.0})
    response, answer = send(sim, provider, body(provider, TEXTS))
    assert response.status == 200
    assert ANSWER_FIELD[provider] not in answer
    stats = sim.statistics()
    assert (stats.malformed, stats.ok, stats.inputs_embedded) == (1, 0, 0)


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("503", lambda r: r.status == 503),
        ("truncated_json", lambda r: r.status == 200 and not r.body.endswith(b"}")),
        ("html", lambda r: r.headers["content-type"] == "text/html"),
        ("drop", lambda r: r.action == "drop"),
        ("hang", lambda r: r.action == "hang"),
        ("reset_mid_body", lambda r: r.action == "reset"),
        ("slow_body", lambda r: r.status == 200 and r.body_s == 2.0),
    ],
)
def test_faults_apply_to_embeddings(fault: str, check: Callable[[SimResponse], bool]) -> None:
    sim = make(faults={fault: 1.0}, slow_body_s=2.0, latency_s=0.25)
    raw = orjson.dumps(body("voyage", TEXTS))
    response = sim.handle(_route("voyage"), credentials("voyage"), raw)
    assert check(response)
    assert response.delay_s == 0.25


def test_huge_body_pads_the_json_with_spaces() -> None:
    sim = make(faults={"huge_body": 1.0}, huge_body_bytes=50_000)
    response, answer = send(sim, "openai", body("openai", TEXTS))
    assert len(response.body) == 50_000
    assert len(answer["data"]) == 3
    assert sim.statistics().inputs_embedded == 3


def _route(provider: str) -> Any:
    route = match_route(PATHS[provider])
    assert route is not None
    return route
