"""score: the prompt, answers, p_yes from fixture logprobs, records, and the Python API."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lm_deluge_cli.io.records import from_json, to_json
from lm_deluge_cli.llm_tools import p_yes, score
from lm_deluge_cli.llm_tools.score import (
    UNPARSEABLE_ANSWER,
    ScoreTask,
    parse_answer,
    score_prompt,
)
from lm_deluge_cli.mock.wire import yes_probability


def finished(task: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The record `task` makes of a record the engine wrote (given in part)."""
    return to_json(task.finish(from_json(record)))


def step(token: str, top: list[tuple[str, float]] | None) -> dict[str, Any]:
    """One token of a record's logprobs (OpenAI's logprobs.content shape), probabilities given."""
    entry: dict[str, Any] = {"token": token, "logprob": math.log(dict(top or []).get(token, 0.5))}
    if top is not None:
        entry["top_logprobs"] = [{"token": t, "logprob": math.log(p)} for t, p in top]
    return entry


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        ([step("Yes", [("Yes", 0.6), ("No", 0.2)])], 0.75),
        ([step("No", [("No", 0.7), ("Yes", 0.1), ("Maybe", 0.2)])], 0.125),
        # Forms are stripped and lower-cased, and summed.
        ([step("Yes", [("Yes", 0.5), (" yes", 0.1), ("NO", 0.2), ("no", 0.2)])], 0.6),
        # A leading whitespace token is not the answer.
        ([step(" ", [(" ", 0.9)]), step("no", [("no", 0.8), ("yes", 0.2)])], 0.2),
        # Only the first answer token counts.
        ([step("Yes", [("Yes", 0.9), ("No", 0.1)]), step("no", [("no", 1.0)])], 0.9),
        # The chosen token counts even when the alternatives leave it out.
        (
            [
                {
                    "token": "Yes",
                    "logprob": math.log(0.5),
                    "top_logprobs": [{"token": "No", "logprob": math.log(0.5)}],
                }
            ],
            0.5,
        ),
        ([step("Maybe", [("Maybe", 0.9), ("Perhaps", 0.1)])], None),
        ([step("Yes", None)], None),
        ([], None),
        (None, None),
        ("junk", None),
    ],
)
def test_p_yes_from_the_first_answer_token(logprobs: Any, expected: float | None) -> None:
    found = p_yes(logprobs)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected)


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("Yes", "yes"),
        ("no", "no"),
        (" YES.", "yes"),
        ("No, it is not.", "no"),
        ('"Yes"', "yes"),
        ("Yesterday", None),
        ("Maybe", None),
        ("", None),
        (None, None),
    ],
)
def test_answers(completion: str | None, answer: str | None) -> None:
    assert parse_answer(completion) == answer


def test_the_prompt_holds_the_question_the_text_and_asks_for_yes_or_no() -> None:
    prompt = score_prompt("Is this spam?", "Win a prize now")
    assert prompt.startswith("Is this spam?")
    assert "Win a prize now" in prompt
    assert "answer yes or no" in prompt.lower()


def test_records_get_answer_and_p_yes_and_unparseable_replies_are_errors() -> None:
    task = ScoreTask("Is it?", top_logprobs=5, max_new_tokens=16)
    assert task.sampling == {"logprobs": True, "top_logprobs": 5, "max_new_tokens": 16}
    ok = finished(
        task,
        {"status": "ok", "completion": "No", "logprobs": [step("No", [("No", 0.8), ("Yes", 0.2)])]},
    )
    assert (ok["answer"], ok["p_yes"]) == ("no", pytest.approx(0.2))
    no_logprobs = finished(task, {"status": "ok", "completion": "Yes"})
    assert (no_logprobs["answer"], no_logprobs["p_yes"]) == ("yes", None)
    odd = finished(task, {"status": "ok", "completion": "I cannot say."})
    assert odd["status"] == "error" and odd["error"]["type"] == UNPARSEABLE_ANSWER
    assert (odd["answer"], odd["p_yes"]) == (None, None)
    failed = finished(task, {"status": "error", "completion": None})
    assert (failed["answer"], failed["p_yes"]) == (None, None)
    assert (task.counts.yes, task.counts.no, task.counts.unparseable) == (1, 1, 1)


def test_score_with_the_mock_gives_answers_and_probabilities() -> None:
    items = [f"item number {i}" for i in range(20)]
    question = "Is this item interesting?"
    answers = score(items, question, model="mock:fast")
    probabilities = score(items, question, model="mock:fast", return_probabilities=True)
    for item, answer, probability in zip(items, answers, probabilities, strict=True):
        expected = yes_probability([{"role": "user", "content": score_prompt(question, item)}])
        assert expected is not None
        assert answer is (expected > 0.5)
        # The mock's lower-ranked spellings shift p_yes a little from its own p(yes).
        assert probability == pytest.approx(expected, abs=0.01)
