"""`lm-deluge embed` and `lm-deluge rerank` as commands: a SIGKILL mid-run (of a real
process), then a rerun that finishes without embedding again what was already written."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lm_deluge_cli.mock.wire import embedding_vector, relevance_score
from tests.cli_runner import cli_env, run_cli
from tests.faults.support import KEY
from tests.loopback import Loopback
from tests.retrieval.support import by_id, read_records, text_of, write_texts

TEXTS = 2_000
BATCH = 50
CONCURRENCY = 4


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_embed_killed_mid_run_resumes_without_embedding_finished_ids_again(
    loopback: Callable[..., Loopback], tmp_path: Path
) -> None:
    ids = write_texts(tmp_path / "in.jsonl", TEXTS)
    output = tmp_path / "out.jsonl"
    server = loopback(latency_s=0.05)
    env = cli_env(OPENAI_BASE_URL=server.url, OPENAI_API_KEY=KEY)
    argv = ["embed", "-m", "openai:text-embedding-3-small", "-i", "in.jsonl", "-o", "out.jsonl"]
    argv += ["--no-cache", "--dimensions", "8", "--batch-size", str(BATCH)]
    argv += ["--max-concurrent-requests", str(CONCURRENCY)]
    argv += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]

    process = subprocess.Popen(
        [sys.executable, "-m", "lm_deluge_cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while complete_lines(output) < 4 * BATCH and process.poll() is None:
        assert time.monotonic() < deadline, "the first run wrote nothing in time"
        time.sleep(0.005)
    process.kill()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == -9, f"the run ended before the kill:\n{stderr.decode()}"
    written = complete_lines(output)
    assert BATCH <= written < TEXTS
    embedded_before = server.stats()["inputs_embedded"]

    final = run_cli(*argv, env=env, timeout=120)
    assert final.returncode == 0, final.stderr.decode()

    records = by_id(read_records(output))  # torn tails repaired, each id once
    assert set(records) == set(ids)
    for i, key in enumerate(ids):
        record = records[key]
        assert record["status"] == "ok", record
        assert record["embedding"] == embedding_vector("text-embedding-3-small", text_of(i), 8)
    embedded = server.stats()["inputs_embedded"]
    again = embedded - TEXTS
    assert embedded_before >= written  # every record written came from a delivered answer
    # Only what was in flight at the kill (or answered but not yet written) is paid twice.
    assert 0 <= again <= BATCH * CONCURRENCY, (embedded_before, written, embedded)


def test_rerank_command_sorts_a_query_run(tmp_path: Path) -> None:
    docs = [f"document {i} on subject {i % 5}" for i in range(30)]
    write_texts(tmp_path / "docs.jsonl", len(docs), text=lambda i: docs[i])
    argv = ["rerank", "-m", "mock:rerank"]
    argv += ["-i", "docs.jsonl", "-o", "ranked.jsonl", "--no-cache"]
    argv += ["--query", "subject 3", "--max-requests-per-minute", "0"]
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr.decode()

    records = read_records(tmp_path / "ranked.jsonl")
    assert [r["rank"] for r in records] == list(range(1, 31))
    scores = [r["relevance_score"] for r in records]
    assert scores == sorted(scores, reverse=True)
    for record in records:
        expected = relevance_score("rerank", "subject 3", docs[record["index"]])
        assert record["relevance_score"] == expected
