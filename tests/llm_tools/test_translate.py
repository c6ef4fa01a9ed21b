"""translate: language codes, the prompt, the detector's thresholds, pass-through records."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.records import from_json, to_json
from lm_deluge_cli.llm_tools import detect, translate
from lm_deluge_cli.llm_tools.detect import Detector, load_detector
from lm_deluge_cli.llm_tools.translate import TranslateTask, check_language, translation_prompt
from lm_deluge_cli.types import Prompt

ENGLISH = "The quarterly report shows that revenue grew by twelve percent compared to last year."
FRENCH = "Le rapport trimestriel montre que le chiffre d'affaires a augmenté de douze pour cent."


def finished(task: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The record `task` makes of a record the engine wrote (given in part)."""
    return to_json(task.finish(from_json(record)))


class FixedIdentifier:
    """A stand-in for py3langid's identifier: always the same verdict."""

    nb_classes = ("en", "fr")

    def __init__(self, language: str, probability: float) -> None:
        self.verdict = (language, probability)
        self.calls = 0

    def classify(self, text: str) -> tuple[str, float]:
        self.calls += 1
        return self.verdict


def test_language_codes_are_iso_639_1() -> None:
    assert check_language(" FR ") == "fr"
    for bad in ("xx", "fra", "english", ""):
        with pytest.raises(ConfigError, match="ISO 639-1"):
            check_language(bad)


def test_the_prompt_names_the_language_and_quotes_the_text() -> None:
    prompt = translation_prompt("Hallo Welt", "fr")
    assert prompt.startswith("Translate the text below into French.")
    assert prompt.endswith('"""\nHallo Welt\n"""')


@pytest.mark.parametrize(
    ("text", "verdict", "threshold", "expected"),
    [
        # Short texts are always sent, and the detector is not even asked.
        ("Thanks!", ("en", 0.99), 0.9, (None, False)),
        (ENGLISH, ("en", 0.95), 0.9, ("en", True)),
        (ENGLISH, ("en", 0.85), 0.9, (None, False)),
        (ENGLISH, ("en", 0.85), 0.8, ("en", True)),
        (FRENCH, ("fr", 0.99), 0.9, ("fr", False)),
        (ENGLISH, ("en", 0.9), 0.9, ("en", True)),
    ],
)
def test_a_text_passes_through_only_when_the_detector_is_sure(
    text: str, verdict: tuple[str, float], threshold: float, expected: tuple[str | None, bool]
) -> None:
    identifier = FixedIdentifier(*verdict)
    found = Detector(identifier, threshold=threshold).detect(text, "en")
    assert (found.language, found.passes) == expected
    assert identifier.calls == (0 if len(text) < detect.MIN_DETECT_CHARS else 1)


def test_thresholds_outside_zero_to_one_are_refused() -> None:
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ConfigError, match="threshold"):
            Detector(FixedIdentifier("en", 1.0), threshold=bad)


def test_the_real_detector_knows_english_from_french() -> None:
    pytest.importorskip("py3langid")
    detector = load_detector()
    assert detector is not None and {"en", "fr", "de"} <= detector.languages
    assert detector.detect(ENGLISH, "en").passes
    french = detector.detect(FRENCH, "en")
    assert not french.passes and french.language == "fr"
    assert detector.detect(FRENCH, "fr").passes


def test_without_the_extra_one_warning_and_no_detector(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(detect, "detector_available", lambda: False)
    detect._warn_missing.cache_clear()
    with caplog.at_level(logging.WARNING, logger=detect.__name__):
        assert load_detector() is None
        assert load_detector() is None
    [warning] = caplog.records
    assert "pip install 'lm-deluge-cli[translate]'" in warning.getMessage()


def test_the_task_answers_passed_through_lines_and_fills_sent_ones() -> None:
    task = TranslateTask("en", detector=Detector(FixedIdentifier("en", 0.99)))
    parse = task.parser(None, None)
    english = task.prepare(parse(1, orjson.dumps({"id": "a", "text": ENGLISH, "metadata": 7})))
    assert isinstance(english, Answered)
    record = to_json(task.finish(english.record))
    assert record["status"] == "ok" and record["translation"] == ENGLISH
    assert (record["passed_through"], record["detected_language"], record["metadata"]) == (
        True,
        "en",
        7,
    )
    sent = TranslateTask("en", detector=Detector(FixedIdentifier("fr", 0.99)))
    prompt = sent.prepare(parse(2, orjson.dumps({"id": "b", "text": FRENCH})))
    assert isinstance(prompt, Prompt)
    done = finished(sent, {"line": 2, "status": "ok", "completion": "  The report.\n"})
    assert done["translation"] == "The report."
    assert (done["detected_language"], done["passed_through"]) == ("fr", False)
    error = finished(sent, {"line": 3, "status": "error", "completion": None})
    assert (error["translation"], error["detected_language"], error["passed_through"]) == (
        None,
        None,
        False,
    )


def test_translate_passes_english_through_and_sends_the_rest() -> None:
    pytest.importorskip("py3langid")
    texts = [ENGLISH, FRENCH]
    records: list[dict[str, Any]] = translate(texts, model="mock:fast", return_records=True)
    assert [r["passed_through"] for r in records] == [True, False]
    assert records[0]["model"] is None and records[1]["model"] == "mock:fast"
    found = translate(texts, model="mock:fast")
    assert found[0] == ENGLISH and found[1] == records[1]["translation"]
    every = translate(texts, model="mock:fast", detect=False, return_records=True)
    assert [r["passed_through"] for r in every] == [False, False]
