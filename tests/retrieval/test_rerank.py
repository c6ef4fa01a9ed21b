"""`run_rerank` end to end with the in-process mock: the ``--query`` mode (one record per
document, sorted once complete, resumable) and the query-lines mode (sorted results, top_n,
queries with more documents than one request takes), and the cache."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_LINES_LEFT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    ConfigError,
)
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.wire import relevance_score
from lm_deluge_cli.providers.retrieval import load_retrieval_registry
from lm_deluge_cli.retrieval.rerank import RerankSettings, run_rerank
from lm_deluge_cli.runner import JobReport
from tests.faults.support import KEY
from tests.loopback import Loopback
from tests.retrieval.support import (
    StopAfter,
    by_id,
    make_job,
    read_records,
    run_sync,
    write_lines,
    write_texts,
)

QUERY = "which subject is number 3"
# The mock's rerank model: at most 1000 documents per request.
MOCK_LIMIT = 1000


def document(i: int) -> str:
    return f"document {i} on subject {i % 13}"


def rerank(
    tmp_path: Path,
    settings: RerankSettings,
    *,
    fresh: bool = False,
    view: StopAfter | None = None,
    **job: Any,
) -> JobReport:
    built = make_job(tmp_path, "mock:rerank", **job)
    stop = view.event if view is not None else None
    return run_sync(lambda: run_rerank(built, settings, fresh=fresh, view=view, stop=stop))


def assert_sorted_and_complete(path: Path, ids: list[str]) -> list[dict[str, Any]]:
    records = read_records(path)
    by_id(records)
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert [r["rank"] for r in records] == list(range(1, len(ids) + 1))
    scores = [r["relevance_score"] for r in records]
    assert scores == sorted(scores, reverse=True)
    for record in records:
        assert record["status"] == "ok", record
        i = int(record["id"][1:])
        assert record["index"] == i
        assert record["relevance_score"] == relevance_score("rerank", QUERY, document(i))
    return records


def test_query_mode_gives_every_document_a_record_sorted_best_first(tmp_path: Path) -> None:
    ids = write_texts(tmp_path / "in.jsonl", 2_500, text=document)
    report = rerank(tmp_path, RerankSettings(query=QUERY))

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["requests"] == 3 and summary["ok"] == 2_500
    assert_sorted_and_complete(tmp_path / "out.jsonl", ids)


def test_query_mode_sorts_errors_last(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "in.jsonl",
        [{"id": "t0", "text": document(0)}, {"id": "bad"}, {"id": "t2", "text": document(2)}],
    )
    report = rerank(tmp_path, RerankSettings(query=QUERY))
    assert report.exit_code == EXIT_SOME_FAILED
    records = read_records(tmp_path / "out.jsonl")
    assert [r["rank"] for r in records] == [1, 2, None]
    assert records[-1]["status"] == "error" and records[-1]["line"] == 2


def test_query_mode_interrupted_then_resumed_still_has_every_document_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model that takes 50 documents a request (the registry's mock takes 1000), answering
    # after a moment: the stop lands with most documents unsent.
    registry = load_retrieval_registry()
    small = dataclasses.replace(registry.rerank_models["mock:rerank"], max_batch_documents=50)
    monkeypatch.setitem(registry.rerank_models, "mock:rerank", small)
    ids = write_texts(tmp_path / "in.jsonl", 600, text=document)
    job: dict[str, Any] = {"mock": {"latency_s": 0.02}, "concurrency": 1}
    settings = RerankSettings(query=QUERY)
    first = rerank(tmp_path, settings, view=StopAfter(ok=100), **job)
    assert first.outcome.interrupted and first.exit_code == EXIT_INTERRUPTED
    partial = read_records(tmp_path / "out.jsonl")
    assert 100 <= len(partial) < 600
    assert all("rank" not in r for r in partial)  # not sorted until complete

    second = rerank(tmp_path, settings, **job)
    assert second.exit_code == EXIT_OK, second.to_dict()
    assert second.resumed_ok == len(partial)
    assert second.to_dict()["requests"] == (600 - len(partial)) // 50
    assert_sorted_and_complete(tmp_path / "out.jsonl", ids)


def test_the_spending_cap_stops_the_run_and_a_higher_cap_finishes_it(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cohere bills a search unit ($0.002) per query of up to 100 documents.
    server = loopback(api_key=KEY)
    monkeypatch.setenv("CO_API_KEY", KEY)
    queries = [
        (f"which subject is number {n}", [document(i) for i in range(10)]) for n in range(20)
    ]
    write_queries(tmp_path / "in.jsonl", queries)
    model, url = "cohere:rerank-v3.5", base_url(server.root, "cohere")

    def run(cap: float) -> JobReport:
        job = make_job(tmp_path, model, base_url=url, concurrency=1, max_cost=cap)
        return run_sync(lambda: run_rerank(job, RerankSettings()))

    first = run(0.0101)
    assert first.exit_code == EXIT_LINES_LEFT and first.outcome.cost_cap_reached
    done = read_records(tmp_path / "out.jsonl")
    assert len(done) == 5 and server.stats()["requests_seen"] == 5
    assert sum(r["cost_usd"] for r in done) == pytest.approx(0.01)

    # The cap is the output's: the first run's $0.01 counts toward the second's $0.04.
    second = run(0.0401)
    assert second.exit_code == EXIT_OK, second.to_dict()
    records = read_records(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(f"q{n}" for n in range(20))
    assert sum(r["cost_usd"] for r in records) == pytest.approx(0.04)
    assert server.stats()["requests_seen"] == 20


def test_a_refused_key_moves_its_queries_to_the_same_model_at_another_key(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv("WRONG_KEY", "co-wrong-0000000000000000")
    monkeypatch.setenv("RIGHT_KEY", KEY)
    documents = [document(i) for i in range(10)]
    write_queries(tmp_path / "in.jsonl", [(f"subject {n}", documents) for n in range(40)])
    url = base_url(server.root, "cohere")
    built = make_job(tmp_path, "cohere:rerank-v3.5", base_url=url, api_key_env="WRONG_KEY")
    wrong = built.models[0]
    built = dataclasses.replace(
        built, models=(wrong, dataclasses.replace(wrong, api_key_env="RIGHT_KEY"))
    )
    report = run_sync(lambda: run_rerank(built, RerankSettings()))

    assert report.exit_code == EXIT_OK, report.to_dict()
    assert report.outcome.statistics.dead_models == ("cohere:rerank-v3.5",)
    records = read_records(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(f"q{n}" for n in range(40))
    assert all(r["status"] == "ok" for r in records)
    assert server.stats()["requests_seen"] <= 40 + 4
    assert "co-wrong" not in (tmp_path / "out.jsonl").read_text()


def test_different_models_cannot_be_mixed(tmp_path: Path) -> None:
    write_texts(tmp_path / "in.jsonl", 3, text=document)
    built = make_job(tmp_path, "mock:rerank")
    other = dataclasses.replace(built.models[0], name="voyage:rerank-2.5")
    built = dataclasses.replace(built, models=(built.models[0], other))
    with pytest.raises(ConfigError, match="exactly one model"):
        run_sync(lambda: run_rerank(built, RerankSettings(query=QUERY)))
    assert not (tmp_path / "out.jsonl").exists()


def write_queries(path: Path, queries: list[tuple[str, list[str]]]) -> None:
    rows = [
        {"id": f"q{n}", "query": query, "documents": docs}
        for n, (query, docs) in enumerate(queries)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def expected_results(query: str, docs: list[str], top_n: int | None) -> list[dict[str, Any]]:
    scored = [(i, relevance_score("rerank", query, d)) for i, d in enumerate(docs)]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    kept = scored if top_n is None else scored[:top_n]
    return [{"index": i, "id": i, "relevance_score": s} for i, s in kept]


def test_query_lines_are_sorted_and_cut_to_top_n(tmp_path: Path) -> None:
    queries = [(f"query {n}", [document(n * 10 + i) for i in range(12)]) for n in range(20)]
    write_queries(tmp_path / "in.jsonl", queries)
    report = rerank(tmp_path, RerankSettings(top_n=5))

    assert report.exit_code == EXIT_OK, report.to_dict()
    assert report.to_dict()["requests"] == 20
    records = by_id(read_records(tmp_path / "out.jsonl"))
    for n, (query, docs) in enumerate(queries):
        record = records[f"q{n}"]
        assert record["status"] == "ok"
        assert record["results"] == expected_results(query, docs, 5)


def test_a_query_with_more_documents_than_one_request_takes_is_merged(tmp_path: Path) -> None:
    docs = [document(i) for i in range(2_500)]
    write_queries(tmp_path / "in.jsonl", [(QUERY, docs)])
    report = rerank(tmp_path, RerankSettings())

    summary = report.to_dict()
    assert summary["requests"] == -(-2_500 // MOCK_LIMIT) == 3, summary
    (record,) = read_records(tmp_path / "out.jsonl")
    assert record["status"] == "ok" and record["attempts"] == 3
    assert record["results"] == expected_results(QUERY, docs, None)


def test_document_ids_in_query_lines_are_kept(tmp_path: Path) -> None:
    docs = [{"id": "alpha", "text": document(1)}, {"id": "beta", "text": document(3)}]
    write_lines(tmp_path / "in.jsonl", [{"id": "q", "query": QUERY, "documents": docs}])
    rerank(tmp_path, RerankSettings(top_n=1))
    (record,) = read_records(tmp_path / "out.jsonl")
    (best,) = record["results"]
    scores = {d["id"]: relevance_score("rerank", QUERY, d["text"]) for d in docs}
    assert best["id"] == max(scores, key=lambda k: scores[k])
    assert best["index"] == [d["id"] for d in docs].index(best["id"])


def test_rerun_with_fresh_is_served_from_the_cache_in_both_modes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ids = write_texts(tmp_path / "docs.jsonl", 300, text=document)
    query_mode = RerankSettings(query=QUERY)
    first = rerank(tmp_path, query_mode, cache_dir=cache, source="docs.jsonl")
    assert first.to_dict()["requests"] == 1
    again = rerank(tmp_path, query_mode, cache_dir=cache, source="docs.jsonl", fresh=True)
    assert again.to_dict()["requests"] == 0 and again.to_dict()["cached"] == 300
    records = assert_sorted_and_complete(tmp_path / "out.jsonl", ids)
    assert all(r["cached"] is True for r in records)

    queries = [(QUERY, [document(i) for i in range(40)]), ("other", [document(1), document(2)])]
    write_queries(tmp_path / "queries.jsonl", queries)
    lines: dict[str, Any] = {
        "source": "queries.jsonl",
        "output": "ranked.jsonl",
        "cache_dir": cache,
    }
    first = rerank(tmp_path, RerankSettings(top_n=3), **lines)
    # The first query's scores were cached by the query-mode run: only the second is sent.
    assert first.to_dict()["requests"] == 1
    again = rerank(tmp_path, RerankSettings(top_n=3), fresh=True, **lines)
    assert again.to_dict()["requests"] == 0
    ranked = by_id(read_records(tmp_path / "ranked.jsonl"))
    for n, (query, docs) in enumerate(queries):
        assert ranked[f"q{n}"]["results"] == expected_results(query, docs, 3)
        assert ranked[f"q{n}"]["cached"] is True
