"""Which model a line goes to: its pin, else one of the live models by weight, drawn from
what the line asks so that identical lines, and the same line in a later run, agree."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.types import Prompt

__all__ = [
    "Choosable",
    "Live",
    "alive",
    "content_draw",
    "draw_live",
    "pick",
    "pick_fitting",
    "weighted_index",
]


class Live(Protocol):
    """What choosing among live models needs of one (a chat slot, an embedding route)."""

    weight: float
    dead_reason: str | None


class Choosable(Live, Protocol):
    """What choosing a line's model needs of a model slot (its pin names the endpoint)."""

    endpoint: Endpoint


L = TypeVar("L", bound=Live)
S = TypeVar("S", bound=Choosable)


def content_draw(content: str) -> float:
    """A number in [0, 1) fixed by a prompt's content digest (hex)."""
    return int(content[:16], 16) / 2**64


def weighted_index(weights: Sequence[float], draw: float) -> int:
    """The index whose share of the total weight contains `draw` (in [0, 1))."""
    target = draw * sum(weights)
    for index, weight in enumerate(weights):
        target -= weight
        if target < 0:
            return index
    return len(weights) - 1


def alive(slots: Sequence[L], exclude: L | None) -> L | None:
    """A live model with weight other than `exclude`, if there is one."""
    for slot in slots:
        if slot.dead_reason is None and slot is not exclude and slot.weight > 0:
            return slot
    return None


def pick(
    slots: Sequence[S],
    prompt: Prompt,
    exclude: S | None,
    draw: float | None,
    rng: random.Random,
) -> S:
    """The model for `prompt`: its pinned one, else one of the live models by weight,
    chosen by `draw` (uniform in [0, 1); from `rng` when None). Raises ConfigError for a
    pin to a model that is not one of `slots`."""
    if prompt.model is None and len(slots) == 1:
        return slots[0]  # the one model: nothing to choose (and for every line of most jobs)
    if prompt.model is not None:
        for slot in slots:
            if prompt.model in (
                slot.endpoint.name,
                slot.endpoint.model.id,
                slot.endpoint.model.wire_id,
            ):
                return slot
        raise ConfigError(
            f"line {prompt.line}: model {prompt.model!r} is not one of this job's models "
            f"({', '.join(s.endpoint.name for s in slots)})"
        )
    return draw_live(slots, exclude, draw, rng)


def draw_live(slots: Sequence[L], exclude: L | None, draw: float | None, rng: random.Random) -> L:
    """One of the live models with weight other than `exclude` (unless it is the only
    one), by weight with `draw` (from `rng` when None); any of `slots` when none lives."""
    candidates = [s for s in slots if s.dead_reason is None and s.weight > 0]
    if exclude is not None and len(candidates) > 1:
        candidates = [s for s in candidates if s is not exclude]
    if not candidates:
        candidates = list(slots)
    if len(candidates) == 1:
        return candidates[0]
    if draw is None:
        draw = rng.random()
    return candidates[weighted_index([s.weight for s in candidates], draw)]


def pick_fitting(
    slots: Sequence[S], fits: Callable[[S], bool], draw: float | None, rng: random.Random
) -> S | None:
    """One of the live models with weight that `fits`, by weight with `draw` (from `rng`
    when None); None when none fits."""
    fitting = [s for s in slots if s.dead_reason is None and s.weight > 0 and fits(s)]
    if not fitting:
        return None
    if draw is None:
        draw = rng.random()
    return fitting[weighted_index([s.weight for s in fitting], draw)]
