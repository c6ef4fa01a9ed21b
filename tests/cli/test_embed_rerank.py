"""`lm-deluge embed` and `rerank` as a user types them, and `status`/`export` on their outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli_runner import RunCli


def _texts(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_embed_writes_one_vector_per_line_and_status_counts_what_is_left(
    run_cli: RunCli, tmp_path: Path
) -> None:
    texts, out = tmp_path / "texts.jsonl", tmp_path / "vectors.jsonl"
    _texts(texts, ["alpha", "beta", "gamma"])
    done = run_cli(
        "embed", "-m", "mock:embed", "-i", str(texts), "-o", str(out), "--dimensions", "4",
        "--no-cache", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["requests"], summary["tool"]) == (3, 1, "embed")
    records = _records(out)
    assert sorted(r["id"] for r in records) == [1, 2, 3]  # ids default to line numbers
    assert all(len(r["embedding"]) == 4 and r["dimensions"] == 4 for r in records)
    # Lines added to the input are what `status` reports as left, and export orders by input.
    _texts(texts, ["alpha", "beta", "gamma", "delta"])
    status = run_cli("status", str(out), "-i", str(texts))
    assert status.returncode == 0, status.stderr.decode()
    assert "remaining: 1 of 4" in status.stdout.decode()
    final = tmp_path / "final.jsonl"
    export = run_cli("export", str(out), "-i", str(texts), "-o", str(final))
    assert export.returncode == 0, export.stderr.decode()
    assert [r["id"] for r in _records(final)] == [1, 2, 3]


def test_embed_refuses_a_size_the_model_cannot_return_before_touching_the_output(
    run_cli: RunCli, cli_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    texts, out = tmp_path / "texts.jsonl", tmp_path / "vectors.jsonl"
    _texts(texts, ["alpha"])
    done = run_cli(
        "embed", "-m", "openai:text-embedding-ada-002", "-i", str(texts), "-o", str(out),
        "--dimensions", "256", env=cli_env(OPENAI_API_KEY="sk-test-not-used"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "fixed at 1536" in done.stderr.decode()
    assert not out.exists()


def test_embed_takes_one_model(run_cli: RunCli, tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    _texts(texts, ["alpha"])
    done = run_cli(
        "embed", "-m", "mock:embed", "-m", "openai:text-embedding-3-small", "-i", str(texts),
        "-o", str(tmp_path / "o.jsonl"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "exactly one model" in done.stderr.decode()


def test_rerank_query_lines_give_sorted_results(run_cli: RunCli, tmp_path: Path) -> None:
    queries, out = tmp_path / "queries.jsonl", tmp_path / "ranked.jsonl"
    line = {"id": "q", "query": "purring cats", "documents": ["stocks fell", "cats purr a lot"]}
    queries.write_text(json.dumps(line) + "\n")
    done = run_cli("rerank", "-m", "mock:rerank", "-i", str(queries), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr.decode()
    (record,) = _records(out)
    scores = [r["relevance_score"] for r in record["results"]]
    assert scores == sorted(scores, reverse=True)
    assert record["results"][0]["id"] == 1  # the document that shares the query's words


def test_rerank_refuses_top_n_with_a_single_query(run_cli: RunCli, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    _texts(docs, ["a"])
    done = run_cli(
        "rerank", "-m", "mock:rerank", "--query", "q", "--top-n", "3", "-i", str(docs),
        "-o", str(tmp_path / "o.jsonl"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "--top-n applies to query lines" in done.stderr.decode()
