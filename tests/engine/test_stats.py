"""Run counters and snapshots: the big line a request holding much of a minute's tokens makes."""

from __future__ import annotations

import pytest

from lm_deluge_cli.engine.stats import BIG_LINE_S, RunStats


def test_only_a_request_holding_much_of_a_minute_s_tokens_is_noted() -> None:
    stats = RunStats()
    # 4,999 of 20,000 tokens/min is ~15 s of the budget, just short.
    assert stats.note_big_line(3, 4_999, 20_000.0, None) is None
    assert stats.snapshot().big_line is None
    assert BIG_LINE_S == 15.0
    assert stats.note_big_line(4, 5_000, 20_000.0, "openai:gpt-4o") is not None
    big = stats.snapshot().big_line
    assert big is not None and (big.line, big.model, big.sent) == (4, "openai:gpt-4o", False)
    assert big.left_s == pytest.approx(15.0)


def test_once_sent_the_line_shows_until_the_budget_has_made_up_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000.0]
    monkeypatch.setattr("lm_deluge_cli.engine.stats.time.monotonic", lambda: now[0])
    stats = RunStats()
    note = stats.note_big_line(17, 18_000, 20_000.0, None)
    assert note is not None
    note.sent_at = now[0]
    now[0] += 14.0
    big = stats.snapshot().big_line
    assert big is not None and big.sent and big.left_s == pytest.approx(40.0)
    now[0] += 40.5
    assert stats.snapshot().big_line is None


def test_a_line_never_sent_is_forgotten_and_a_later_one_replaces_it() -> None:
    stats = RunStats()
    first = stats.note_big_line(1, 10_000, 20_000.0, None)
    stats.drop_big_line(first)
    assert stats.snapshot().big_line is None
    second = stats.note_big_line(2, 10_000, 20_000.0, None)
    third = stats.note_big_line(3, 12_000, 20_000.0, None)
    stats.drop_big_line(second)  # no longer the one shown: nothing changes
    big = stats.snapshot().big_line
    assert third is not None and big is not None and big.line == 3
