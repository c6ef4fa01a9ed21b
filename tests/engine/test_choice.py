"""Which model a line goes to: its pin, else a live one by weight, drawn from its content."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.choice import pick
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.types import Prompt


@dataclass
class Slot:
    endpoint: Endpoint
    weight: float = 1.0
    dead_reason: str | None = None


def slot(name: str, weight: float = 1.0, dead_reason: str | None = None) -> Slot:
    endpoint = resolve_endpoint(ModelEntry(name=name), env={"OPENAI_API_KEY": "sk-0000"})
    return Slot(endpoint, weight, dead_reason)


def prompt(model: str | None = None) -> Prompt:
    return Prompt(id=1, line=1, messages=[], model=model)


@pytest.mark.parametrize(
    "only",
    [
        slot("openai:gpt-4.1-mini"),
        slot("openai:gpt-4.1-mini", weight=0),
        slot("openai:gpt-4.1-mini", dead_reason="x"),
    ],
    ids=["live", "no weight", "dead"],
)
def test_the_one_model_takes_every_line(only: Slot) -> None:
    rng = random.Random(1)
    assert pick([only], prompt(), None, None, rng) is only
    assert pick([only], prompt(), only, 0.5, rng) is only
    assert pick([only], prompt("openai:gpt-4.1-mini"), None, None, rng) is only
    with pytest.raises(ConfigError):
        pick([only], prompt("openai:gpt-4.1"), None, None, rng)


def test_several_models_are_chosen_by_the_draw_among_the_live_ones() -> None:
    a, b = slot("openai:gpt-4.1-mini"), slot("openai:gpt-4.1", weight=3)
    rng = random.Random(1)
    assert [pick([a, b], prompt(), None, draw, rng) for draw in (0.1, 0.3)] == [a, b]
    assert pick([a, b], prompt(), b, 0.9, rng) is a
    b.dead_reason = "refused"
    assert pick([a, b], prompt(), None, 0.9, rng) is a
