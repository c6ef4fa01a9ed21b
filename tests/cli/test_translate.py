"""`lm-deluge translate` end to end on the mock: only non-English lines are sent, English
ones pass through offline, and a rerun resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import CliResult, RunCli

ENGLISH = [
    "The quarterly report shows that revenue grew by twelve percent compared to last year.",
    "Please send the signed contract back to our office before the end of the month.",
    "I love this product, it works great and the shipping was surprisingly fast.",
    "Our team will review your application and get back to you within two weeks.",
    "The weather forecast predicts heavy rain and strong winds for the whole weekend.",
]
OTHER = [
    "Le rapport trimestriel montre que le chiffre d'affaires a augmenté de douze pour cent.",
    "Bitte senden Sie den unterschriebenen Vertrag bis Ende des Monats an unser Büro zurück.",
    "Me encanta este producto, funciona muy bien y el envío fue sorprendentemente rápido.",
    "Il nostro team esaminerà la tua candidatura e ti risponderà entro due settimane.",
]
FLAGS = ["-m", "mock:fast", "-q", "--json", "--no-cache"]


def write_lines(path: Path, texts: list[str], start: int = 0) -> None:
    rows = [{"id": f"t{start + i}", "text": t} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def summary(proc: CliResult) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr.decode()
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_only_lines_not_in_english_are_sent_and_a_rerun_resumes(
    run_cli: RunCli, tmp_path: Path
) -> None:
    pytest.importorskip("py3langid")
    texts = [t for pair in zip(ENGLISH, [*OTHER, ""], strict=True) for t in pair if t]
    write_lines(tmp_path / "in.jsonl", texts)
    first = summary(run_cli("translate", "-i", "in.jsonl", "-o", "out.jsonl", *FLAGS))
    assert (first["requests"], first["passed_through"], first["ok"]) == (4, 5, 9)
    assert (first["tool"], first["to"], first["detector"]) == ("translate", "en", True)
    found = records(tmp_path / "out.jsonl")
    for record in found.values():
        text = texts[int(record["id"][1:])]
        if text in ENGLISH:
            assert record["passed_through"] is True and record["translation"] == text
            assert (record["detected_language"], record["attempts"]) == ("en", 0)
        else:
            assert record["passed_through"] is False and record["model"] == "mock:fast"
            assert record["translation"] == record["completion"].strip()
            assert record["detected_language"] in ("fr", "de", "es", "it")
    # Rerun: nothing left to do.
    again = summary(run_cli("translate", "-i", "in.jsonl", "-o", "out.jsonl", *FLAGS))
    assert (again["requests"], again["skipped_already_done"]) == (0, 9)
    # More lines in the input: only the new non-English one is sent.
    write_lines(tmp_path / "more.jsonl", [ENGLISH[0], OTHER[0]], start=len(texts))
    (tmp_path / "in.jsonl").write_text(
        (tmp_path / "in.jsonl").read_text() + (tmp_path / "more.jsonl").read_text()
    )
    more = summary(run_cli("translate", "-i", "in.jsonl", "-o", "out.jsonl", *FLAGS))
    assert (more["requests"], more["passed_through"], more["skipped_already_done"]) == (1, 1, 9)
    assert len(records(tmp_path / "out.jsonl")) == 11


def test_no_detect_sends_every_line_and_the_summary_says_why(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write_lines(tmp_path / "in.jsonl", ENGLISH + OTHER)
    result = summary(
        run_cli("translate", "-i", "in.jsonl", "-o", "out.jsonl", "--no-detect", *FLAGS)
    )
    assert (result["requests"], result["passed_through"], result["detector"]) == (9, 0, False)
    text = run_cli("translate", "-i", "in.jsonl", "-o", "b.jsonl", "--no-detect", "-m", "mock:fast")
    assert b"passed through: none, every line was sent (--no-detect)" in text.stderr


def test_another_target_language(run_cli: RunCli, tmp_path: Path) -> None:
    pytest.importorskip("py3langid")
    write_lines(tmp_path / "in.jsonl", ENGLISH[:2] + OTHER[:1])
    result = summary(run_cli("translate", "--to", "fr", "-i", "in.jsonl", "-o", "o", *FLAGS))
    assert (result["requests"], result["passed_through"]) == (2, 1)


def test_a_bad_language_code_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", ENGLISH[:1])
    proc = run_cli("translate", "--to", "english", "-i", "in.jsonl", "-o", "o", "-m", "mock:fast")
    assert proc.returncode == 2 and b"ISO 639-1" in proc.stderr
