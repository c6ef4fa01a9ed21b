"""A model of any provider whose base URL is ``mock://in-process/…`` is answered by the
in-process mock in its provider's own wire format, with no key and no socket: the transport
follows the URL's scheme, not the provider's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lm_deluge_cli.cli.app import app
from lm_deluge_cli.mock.formats import BASE_PATHS
from lm_deluge_cli.mock.simulator import mock_completion
from lm_deluge_cli.mock.wire import embedding_vector, relevance_score

# A model of each chat wire format, embeddings API and rerank API, and the provider whose
# path on the mock (BASE_PATHS) its base URL takes.
CHAT_MODELS = [
    ("openai:gpt-4.1-mini", "openai"),
    ("openai:gpt-5.5-pro", "openai"),  # the Responses API
    ("anthropic:claude-sonnet-4-5-20250929", "anthropic"),
    ("gemini:gemini-2.5-flash", "gemini"),
    ("mistral:mistral-large-2512", "mistral"),
    ("cohere:command-a-03-2025", "cohere"),
    ("groq:openai/gpt-oss-120b", "openai"),
    ("bedrock:global.anthropic.claude-opus-4-6-v1", "bedrock"),
]
EMBEDDING_MODELS = [
    ("openai:text-embedding-3-small", "openai"),
    ("cohere:embed-v4.0", "cohere"),
    ("gemini:gemini-embedding-001", "gemini"),
    ("voyage:voyage-3.5", "voyage"),
    ("mistral:mistral-embed", "mistral"),
]
RERANK_MODELS = [
    ("cohere:rerank-v3.5", "cohere"),
    ("voyage:rerank-2.5", "voyage"),
    ("jina:jina-reranker-v3", "jina"),
]
# Bedrock signs every request, so some AWS credentials must be set, whatever the URL; the
# signature, not the secret, goes in the request, and it never leaves the process.
AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
PROMPTS = ["what is a mock", "name three colours"]


def write_job(tmp_path: Path, model: str, provider: str, lines: list[dict[str, Any]]) -> str:
    """A job sending `lines` to `model` at the mock's path for `provider`; the model's id."""
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n'
        f'[[models]]\nname = "{model}"\nbase_url = "mock://in-process{BASE_PATHS[provider]}"\n'
        "mock = { latency_s = 0, latency_jitter_s = 0 }\n"
    )
    return model.partition(":")[2]


def run(command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`command` on job.toml, in-process; the records it wrote."""
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
    result = CliRunner().invoke(app, [command, "job.toml", "--no-cache", "-q"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda record: record["id"])


@pytest.mark.parametrize(("model", "provider"), CHAT_MODELS)
def test_a_chat_model_of_any_provider_answers_from_the_mock(
    model: str, provider: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    lines = [{"id": i, "prompt": prompt} for i, prompt in enumerate(PROMPTS)]
    wire_id = write_job(tmp_path, model, provider, lines)
    records = run("run", monkeypatch, tmp_path)
    assert [record["status"] for record in records] == ["ok", "ok"]
    assert [record["completion"] for record in records] == [
        mock_completion([{"role": "user", "content": prompt}], wire_id) for prompt in PROMPTS
    ]


@pytest.mark.parametrize(("model", "provider"), EMBEDDING_MODELS)
def test_an_embedding_model_of_any_provider_answers_from_the_mock(
    model: str, provider: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    texts = ["cats purr", "dogs bark"]
    wire_id = write_job(
        tmp_path, model, provider, [{"id": i, "text": t} for i, t in enumerate(texts)]
    )
    records = run("embed", monkeypatch, tmp_path)
    assert [record["status"] for record in records] == ["ok", "ok"]
    assert [record["embedding"] for record in records] == [
        embedding_vector(wire_id, text, len(record["embedding"]))
        for record, text in zip(records, texts, strict=True)
    ]


@pytest.mark.parametrize(("model", "provider"), RERANK_MODELS)
def test_a_rerank_model_of_any_provider_answers_from_the_mock(
    model: str, provider: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    documents = ["cats purr", "dogs bark"]
    line = {"id": 1, "query": "cats", "documents": documents}
    wire_id = write_job(tmp_path, model, provider, [line])
    (record,) = run("rerank", monkeypatch, tmp_path)
    assert record["status"] == "ok"
    scores = {result["index"]: result["relevance_score"] for result in record["results"]}
    assert scores == {
        i: relevance_score(wire_id, "cats", document) for i, document in enumerate(documents)
    }
