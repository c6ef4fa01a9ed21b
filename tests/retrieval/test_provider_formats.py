"""Each provider's embeddings and rerank wire format end to end: `run_embed` and `run_rerank`
over a loopback mock server that insists on the key, in the provider's own header."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lm_deluge_cli.errors import EXIT_OK
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.wire import embedding_vector, relevance_score
from lm_deluge_cli.retrieval.embed import EmbedSettings, run_embed
from lm_deluge_cli.retrieval.rerank import RerankSettings, run_rerank
from tests.faults.support import KEY
from tests.loopback import Loopback
from tests.retrieval.support import by_id, make_job, read_records, run_sync, write_texts

TEXTS = 20
BATCH = 7


@pytest.mark.parametrize(
    ("model", "provider", "key_env", "dimensions", "input_type"),
    [
        ("openai:text-embedding-3-small", "openai", "OPENAI_API_KEY", 8, None),
        ("cohere:embed-v4.0", "cohere", "CO_API_KEY", 256, "document"),
        ("gemini:gemini-embedding-001", "gemini", "GEMINI_API_KEY", 128, "query"),
        ("voyage:voyage-3.5", "voyage", "VOYAGE_API_KEY", 256, "query"),
        ("mistral:codestral-embed", "mistral", "MISTRAL_API_KEY", 256, None),
    ],
)
def test_embeddings_format_end_to_end(
    tmp_path: Path,
    loopback: Callable[..., Loopback],
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    provider: str,
    key_env: str,
    dimensions: int,
    input_type: str | None,
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv(key_env, KEY)
    texts = [f"{provider} text {i}" for i in range(TEXTS)]
    ids = write_texts(tmp_path / "in.jsonl", TEXTS, text=lambda i: texts[i])
    job = make_job(tmp_path, model, base_url=base_url(server.root, provider))
    settings = EmbedSettings(dimensions=dimensions, input_type=input_type, batch_size=BATCH)
    report = run_sync(lambda: run_embed(job, settings))

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["requests"] == -(-TEXTS // BATCH), summary
    assert server.stats()["inputs_embedded"] == TEXTS
    records = by_id(read_records(tmp_path / "out.jsonl"))
    wire_id = model.split(":", 1)[1]
    for key, text in zip(ids, texts, strict=True):
        record = records[key]
        assert record["status"] == "ok" and record["model"] == model, record
        assert record["embedding"] == embedding_vector(wire_id, text, dimensions)
        assert record["usage"]["input_tokens"] >= 1
    assert KEY not in (tmp_path / "out.jsonl").read_text()


@pytest.mark.parametrize(
    ("model", "provider", "key_env"),
    [
        ("cohere:rerank-v3.5", "cohere", "CO_API_KEY"),
        ("voyage:rerank-2.5", "voyage", "VOYAGE_API_KEY"),
        ("jina:jina-reranker-v3", "jina", "JINA_API_KEY"),
    ],
)
def test_rerank_format_end_to_end(
    tmp_path: Path,
    loopback: Callable[..., Loopback],
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    provider: str,
    key_env: str,
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv(key_env, KEY)
    query = f"what does {provider} rank first"
    docs = [f"{provider} document {i} on subject {i % 4}" for i in range(30)]
    write_texts(tmp_path / "in.jsonl", len(docs), text=lambda i: docs[i])
    job = make_job(tmp_path, model, base_url=base_url(server.root, provider))
    report = run_sync(lambda: run_rerank(job, RerankSettings(query=query)))

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["requests"] == 1 and summary["ok"] == 30
    assert server.stats()["documents_ranked"] == 30
    records = read_records(tmp_path / "out.jsonl")
    assert [r["rank"] for r in records] == list(range(1, 31))
    wire_id = model.split(":", 1)[1]
    for record in records:
        expected = relevance_score(wire_id, query, docs[record["index"]])
        assert record["relevance_score"] == expected, record
    scores = [r["relevance_score"] for r in records]
    assert scores == sorted(scores, reverse=True)
