"""The rerank APIs of the simulator (Cohere v2, Voyage, Jina) against the providers'
documented request bodies; then embeddings and rerank over a real loopback socket and the
in-process transport."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson
import pytest

from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.server import MockServer, serve
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator
from lm_deluge_cli.mock.transport import InProcessTransport
from lm_deluge_cli.mock.wire import rank_documents, rerank_tokens
from lm_deluge_cli.types import HttpRequest

KEY = "sk-mock-rerank-key-0123"
QUERY = "What is the capital of the United States?"
DOCUMENTS = [
    "Carson City is the capital city of the American state of Nevada.",
    "Capital punishment has existed in the United States since before it was a country.",
    "Washington, D.C. is the capital of the United States. What else?",
    "Bananas are rich in potassium.",
]
RELEVANT = 2  # holds every word of the query

PATHS = {"cohere": "/cohere/v2/rerank", "voyage": "/voyage/v1/rerank", "jina": "/jina/v1/rerank"}
MODELS = {"cohere": "rerank-v3.5", "voyage": "rerank-2.5", "jina": "jina-reranker-v2"}
TOP = {"cohere": "top_n", "voyage": "top_k", "jina": "top_n"}
RESULTS = {"cohere": "results", "voyage": "data", "jina": "results"}
PROVIDERS = list(PATHS)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=FakeClock())


def body(
    provider: str, documents: list[str] | list[dict[str, str]] | None = None, /, **extra: Any
) -> dict[str, Any]:
    """A rerank request; `documents` may also be Jina's text objects, `extra` any field."""
    return {
        "model": MODELS[provider],
        "query": QUERY,
        "documents": DOCUMENTS if documents is None else documents,
        **extra,
    }


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
    sent = {"authorization": f"Bearer {KEY}"} if headers is None else dict(headers)
    response = sim.handle(route, sent, raw)
    return response, orjson.loads(response.body) if response.body else None


# --- routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/cohere/v2/rerank", "cohere_rerank"),
        ("/v2/rerank", "cohere_rerank"),
        ("/voyage/v1/rerank", "voyage_rerank"),
        ("/jina/v1/rerank", "jina_rerank"),
        ("/v1/rerank", "jina_rerank"),
    ],
)
def test_each_rerank_path_reaches_its_format(path: str, name: str) -> None:
    route = match_route(path)
    assert route is not None and route.format.name == name


# --- answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_document_ranked_best_first(provider: str) -> None:
    sim = make(api_key=KEY)
    response, answer = send(sim, provider, body(provider))
    assert response.status == 200, answer
    results = answer[RESULTS[provider]]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert results[0]["index"] == RELEVANT
    assert results[-1]["index"] == 3  # shares no word with the query
    expected = rank_documents(MODELS[provider], QUERY, DOCUMENTS)
    assert [(r["index"], r["relevance_score"]) for r in results] == expected
    stats = sim.statistics()
    assert (stats.ok, stats.documents_ranked) == (1, len(DOCUMENTS))
    assert stats.tokens_in == rerank_tokens(QUERY, DOCUMENTS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_top_n_keeps_the_best(provider: str) -> None:
    _, full = send(make(), provider, body(provider))
    _, cut = send(make(), provider, body(provider, **{TOP[provider]: 2}))
    assert cut[RESULTS[provider]] == full[RESULTS[provider]][:2]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("top", [0, -1, "2", True])
def test_a_bad_top_n_is_refused(provider: str, top: Any) -> None:
    response, _ = send(make(), provider, body(provider, **{TOP[provider]: top}))
    assert response.status == 400


def test_the_same_request_gets_the_same_scores() -> None:
    first = send(make(), "jina", body("jina"))[1]
    second = send(make(seed=3), "jina", body("jina"))[1]
    assert first == second


def test_each_providers_own_usage_and_envelope() -> None:
    tokens = rerank_tokens(QUERY, DOCUMENTS)
    cohere = send(make(), "cohere", body("cohere"))[1]
    assert cohere["meta"]["billed_units"] == {"search_units": 1}
    assert cohere["meta"]["api_version"]["version"] == "2"
    assert len(cohere["id"]) == 36
    voyage = send(make(), "voyage", body("voyage"))[1]
    assert (voyage["object"], voyage["model"]) == ("list", MODELS["voyage"])
    assert voyage["usage"] == {"total_tokens": tokens}
    jina = send(make(), "jina", body("jina"))[1]
    assert jina["model"] == MODELS["jina"]
    assert jina["usage"] == {"total_tokens": tokens}


def test_cohere_bills_a_search_unit_per_hundred_documents() -> None:
    documents = [f"document {i}" for i in range(250)]
    _, answer = send(make(), "cohere", body("cohere", documents, top_n=3))
    assert answer["meta"]["billed_units"]["search_units"] == math.ceil(250 / 100)
    assert len(answer["results"]) == 3


def test_return_documents_where_the_api_has_it() -> None:
    voyage = send(make(), "voyage", body("voyage"))[1]
    assert "document" not in voyage["data"][0]  # Voyage's default is false
    voyage = send(make(), "voyage", body("voyage", return_documents=True))[1]
    assert voyage["data"][0]["document"] == DOCUMENTS[RELEVANT]
    jina = send(make(), "jina", body("jina"))[1]
    assert jina["results"][0]["document"] == {"text": DOCUMENTS[RELEVANT]}  # default true
    jina = send(make(), "jina", body("jina", return_documents=False))[1]
    assert "document" not in jina["results"][0]


def test_jina_takes_documents_as_text_objects() -> None:
    objects = [{"text": doc} for doc in DOCUMENTS]
    assert send(make(), "jina", body("jina", objects))[1] == send(make(), "jina", body("jina"))[1]


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "limit"), [("cohere", 1000), ("voyage", 1000)])
def test_document_limits(provider: str, limit: int) -> None:
    documents = [f"doc {i}" for i in range(limit + 1)]
    assert send(make(), provider, body(provider, documents[:limit]))[0].status == 200
    response, answer = send(make(), provider, body(provider, documents))
    assert response.status == 400
    assert "message" in answer if provider == "cohere" else "detail" in answer


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("missing", ["model", "query", "documents"])
def test_required_fields(provider: str, missing: str) -> None:
    payload = body(provider)
    del payload[missing]
    response, answer = send(make(), provider, payload)
    assert response.status == 400
    assert missing in (answer.get("message") or answer.get("detail"))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("payload", [b"not json", b"[]", {"documents": []}, {"query": ""}])
def test_bad_bodies(provider: str, payload: Any) -> None:
    if isinstance(payload, dict):
        payload = {**body(provider), **payload}
    response, answer = send(make(), provider, payload)
    assert response.status == 400
    assert isinstance(answer, dict)


# --- keys, limits and faults -----------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_or_missing_key_is_refused(provider: str) -> None:
    sim = make(api_key=KEY)
    wrong, answer = send(sim, provider, body(provider), {"authorization": "Bearer nope"})
    assert wrong.status == 401
    assert "nope" not in wrong.body.decode()
    missing, _ = send(sim, provider, body(provider), {})
    assert missing.status == 401
    if provider != "cohere":
        assert set(answer) == {"detail"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_over_the_limit_gets_the_providers_429(provider: str) -> None:
    sim = make(requests_per_minute=60, burst_s=1.0)
    assert send(sim, provider, body(provider))[0].status == 200
    refused, answer = send(sim, provider, body(provider))
    assert refused.status == 429
    if provider == "cohere":
        assert "message" in answer
    else:
        assert refused.headers["retry-after"] == "1"
        assert "detail" in answer


def test_a_rerank_costs_query_tokens_per_document_plus_the_documents() -> None:
    cost = rerank_tokens(QUERY, DOCUMENTS)
    sim = make(tokens_per_minute=cost - 1)
    response, answer = send(sim, "voyage", body("voyage"))
    assert response.status == 429
    assert str(cost) in answer["detail"]
    assert "retry-after" not in response.headers  # no wait can admit it


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_fields_strips_the_results(provider: str) -> None:
    sim = make(faults={"missing_fields": 1.0})
    response, answer = send(sim, provider, body(provider))
    assert response.status == 200
    assert RESULTS[provider] not in answer
    stats = sim.statistics()
    assert (stats.malformed, stats.documents_ranked) == (1, 0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_injected_errors_are_the_providers_own(provider: str) -> None:
    sim = make(error_rate=1.0)
    response, answer = send(sim, provider, body(provider))
    assert response.status == 500
    assert isinstance(answer, dict)
    assert sim.statistics().errors == 1


# --- over a socket and in process ------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with await serve(MockSettings(api_key=KEY, requests_per_minute=600)) as running:
        yield running


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_embeddings_and_rerank_over_a_loopback_socket(
    server: MockServer, anyio_backend: str
) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(headers=headers, timeout=10.0) as client:
        embedded = await client.post(
            server.base_url("openai") + "/embeddings",
            json={"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 16},
        )
        ranked = await client.post(server.base_url("voyage") + "/rerank", json=body("voyage"))
        jina = await client.post(server.base_url("jina") + "/rerank", json=body("jina"))
        cohere = await client.post(
            server.base_url("cohere") + "/v2/embed",
            json={
                "model": "embed-v4.0",
                "texts": ["a"],
                "input_type": "search_query",
            },
        )
    assert embedded.status_code == 200
    assert [len(item["embedding"]) for item in embedded.json()["data"]] == [16, 16]
    assert "x-ratelimit-remaining-requests" in embedded.headers
    assert ranked.status_code == jina.status_code == cohere.status_code == 200
    assert ranked.json()["data"][0]["index"] == RELEVANT
    stats = server.simulator.statistics()
    assert (stats.ok, stats.inputs_embedded, stats.documents_ranked) == (4, 3, 8)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_in_process_mock_answers_rerank_as_jina(anyio_backend: str) -> None:
    transport = InProcessTransport(make())
    request = HttpRequest(
        "POST",
        "mock://in-process/v1/rerank",
        {"Content-Type": "application/json"},
        orjson.dumps(body("jina", top_n=1)),
    )
    response = await transport.send(request)
    assert response.status == 200
    answer = orjson.loads(response.body)
    assert [r["index"] for r in answer["results"]] == [RELEVANT]
