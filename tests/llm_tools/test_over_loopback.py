"""The toolkit over a loopback mock server, in several providers' wire formats: extract gets
schema-conforming JSON through each provider's structured output, score gets P(yes) from
logprobs, translate sends only what is not already English."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.errors import EXIT_OK
from lm_deluge_cli.llm_tools.detect import load_detector
from lm_deluge_cli.llm_tools.extract import ExtractTask
from lm_deluge_cli.llm_tools.score import ScoreTask
from lm_deluge_cli.llm_tools.translate import TranslateTask
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.simulator import MockSettings
from lm_deluge_cli.runner import run_job
from lm_deluge_cli.schema import violation
from tests.faults.support import KEY
from tests.loopback import Loopback
from tests.retrieval.support import make_job, read_records, run_sync, write_lines

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def offline_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")


@pytest.fixture
def server() -> Iterator[Loopback]:
    started = Loopback(MockSettings(api_key=KEY))
    yield started
    started.close()


@pytest.mark.parametrize(
    ("model", "provider", "key_env"),
    [
        ("openai:gpt-4.1-mini", "openai", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-5-20250929", "anthropic", "ANTHROPIC_API_KEY"),
        ("gemini:gemini-2.5-flash", "gemini", "GEMINI_API_KEY"),
        ("mistral:mistral-large-2512", "mistral", "MISTRAL_API_KEY"),
    ],
)
def test_extract_gets_data_matching_the_schema_in_each_format(
    tmp_path: Path,
    server: Loopback,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    provider: str,
    key_env: str,
) -> None:
    monkeypatch.setenv(key_env, KEY)
    texts = [f"Person {i} is {20 + i} years old and likes tea." for i in range(12)]
    write_lines(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    job = make_job(tmp_path, model, base_url=base_url(server.root, provider))
    report = run_sync(lambda: run_job(job, task=ExtractTask(SCHEMA)))
    assert report.exit_code == EXIT_OK, report.to_dict()
    records = read_records(tmp_path / "out.jsonl")
    assert len(records) == len(texts)
    for record in records:
        assert record["status"] == "ok", record
        assert violation(record["data"], SCHEMA) is None, record["data"]
    assert server.stats()["requests_seen"] == len(texts)


def test_score_reads_p_yes_from_the_logprobs(
    tmp_path: Path, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_lines(tmp_path / "in.jsonl", [{"id": i, "text": f"review {i}"} for i in range(10)])
    job = make_job(tmp_path, "openai:gpt-4.1-mini", base_url=server.url)
    report = run_sync(lambda: run_job(job, task=ScoreTask("Is the customer happy?")))
    assert report.exit_code == EXIT_OK, report.to_dict()
    for record in read_records(tmp_path / "out.jsonl"):
        assert record["answer"] in ("yes", "no"), record
        p_yes = record["p_yes"]
        assert isinstance(p_yes, float) and 0 < p_yes < 1
        # The answer given is the likelier one.
        assert (record["answer"] == "yes") == (p_yes > 0.5)


def test_translate_sends_only_what_is_not_english(
    tmp_path: Path, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = load_detector()
    if detector is None:
        pytest.skip("the translate extra (py3langid) is not installed")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    lines = [
        "The package arrived on time and everything was in perfect condition.",
        "Le colis est arrivé à temps et tout était en parfait état, merci beaucoup.",
        "I would definitely recommend this seller to my friends and family.",
        "Das Paket kam pünktlich an und alles war in einwandfreiem Zustand.",
    ]
    write_lines(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(lines)])
    job = make_job(tmp_path, "openai:gpt-4.1-mini", base_url=server.url)
    task = TranslateTask("en", detector=detector)
    report = run_sync(lambda: run_job(job, task=task))
    assert report.exit_code == EXIT_OK, report.to_dict()
    assert server.stats()["requests_seen"] == 2
    records = {r["id"]: r for r in read_records(tmp_path / "out.jsonl")}
    assert [records[i]["passed_through"] for i in range(4)] == [True, False, True, False]
    assert records[0]["translation"] == lines[0]
