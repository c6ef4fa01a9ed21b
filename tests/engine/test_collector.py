"""The collector's settings during a run: raised, what exists set aside, then put back."""

from __future__ import annotations

import gc

from lm_deluge_cli.engine.collector import YOUNG_THRESHOLD, run_collector


def test_a_run_collects_less_often_and_puts_the_settings_back() -> None:
    before = gc.get_threshold()
    with run_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed when the run began
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_a_run_are_still_collected() -> None:
    class Node:
        other: Node

    with run_collector():
        gc.collect()
        for _ in range(1000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2000
