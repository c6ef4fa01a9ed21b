"""Progress views read statistics snapshots and render them; they never change them."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_values import LimiterStats
from lm_deluge_cli.engine.stats import BigLine, RunStatistics, RunStats
from lm_deluge_cli.progress import (
    BoundWindow,
    PlainProgress,
    RateWindow,
    RichProgress,
    describe_big_line,
    eta_seconds,
    format_cost,
    format_duration,
    make_view,
)


def snapshot(**fields: object) -> RunStatistics:
    base = RunStats(total=100, total_is_estimate=False).snapshot()
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def token_limiter(waited_s: float) -> LimiterStats:
    """The run's limiter at 100,000 tokens/min, after 100 requests holding 521 tokens each."""
    stats = RateLimiter(None, 100_000, name="run").statistics()
    return dataclasses.replace(
        stats, acquired=100, tokens_acquired=52_100, waited_tokens_s=waited_s
    )


def test_rate_window_measures_from_the_start() -> None:
    window = RateWindow(window_s=10)
    rpm, tpm = window.add(snapshot(elapsed_s=2.0, requests=10, input_tokens=100, output_tokens=20))
    assert rpm == 300 and tpm == 3600
    # Points older than the window drop out, so the rate follows recent traffic.
    window.add(snapshot(elapsed_s=12.0, requests=110, input_tokens=100, output_tokens=20))
    rpm, _ = window.add(snapshot(elapsed_s=22.0, requests=120, input_tokens=100, output_tokens=20))
    assert rpm == 60


def test_eta_duration_and_cost_formats() -> None:
    assert eta_seconds(snapshot(ok=25, elapsed_s=10.0)) == 30.0
    assert eta_seconds(snapshot(total=None, ok=25, elapsed_s=10.0)) is None
    assert eta_seconds(snapshot(ok=0, elapsed_s=10.0)) is None
    assert format_duration(None) == "--:--"
    assert format_duration(75) == "01:15"
    assert format_duration(3725) == "1:02:05"
    assert format_cost(snapshot(cost_usd=0.5)) == "$0.5000"
    assert format_cost(snapshot(cost_usd=0.5, cost_known=False)) == "$0.5000+?"


def test_plain_progress_prints_one_line_per_update() -> None:
    stream = io.StringIO()
    view = PlainProgress(stream)
    stats = snapshot(
        ok=40,
        failed=2,
        skipped=8,
        requests=45,
        retries=3,
        rate_limited=1,
        elapsed_s=5.0,
        cost_usd=0.01,
        cached=7,
        deduplicated=4,
    )
    view.update(stats)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert "50/100" in line and "ok=40" in line and "errors=2" in line
    assert "retries=3" in line and "429s=1" in line and "req/min=540" in line
    assert "cached=7 shared=4" in line
    assert line.rstrip().endswith("bound_by=none")


def test_plain_progress_names_the_limit_that_holds_the_run_back() -> None:
    stream = io.StringIO()
    PlainProgress(stream).update(
        snapshot(requests=100, elapsed_s=20.0, limiters=(token_limiter(18.4),))
    )
    assert stream.getvalue().rstrip().endswith("bound_by=tokens_per_minute:92%")


def test_bound_window_follows_the_last_few_seconds() -> None:
    window = BoundWindow(window_s=10)
    # Held back by tokens/min for the first 10 s, then no more.
    first = window.add(snapshot(requests=50, elapsed_s=10.0, limiters=(token_limiter(9.5),)))
    assert first is not None and first.limit == "tokens_per_minute"
    later = window.add(snapshot(requests=90, elapsed_s=15.0, limiters=(token_limiter(9.5),)))
    assert later is not None  # 9.5 s of the first 15: still measured from the start
    recent = window.add(snapshot(requests=400, elapsed_s=20.0, limiters=(token_limiter(9.5),)))
    assert recent is None  # the last 10 s: no wait at all


def test_rich_progress_renders_the_columns() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    view = RichProgress(console)
    view.start()
    view.update(snapshot(ok=10, failed=1, requests=11, elapsed_s=1.0))
    view.stop(snapshot(ok=20, failed=1, requests=9, elapsed_s=2.0, cached=8, deduplicated=4))
    text = out.getvalue()
    assert "21/100" in text and "ok 20 err 1 (cached 8 shared 4)" in text and "429s 0" in text
    assert "held back" not in text


def test_rich_progress_says_what_holds_the_run_back() -> None:
    out = io.StringIO()
    view = RichProgress(Console(file=out, force_terminal=True, width=250))
    view.start()
    view.stop(snapshot(requests=100, elapsed_s=20.0, limiters=(token_limiter(18.4),)))
    assert "held back by tokens/min 92%" in out.getvalue()


WAITING = BigLine(17, 18_000, 20_000.0, None, sent=False, left_s=54.0)
SENT = BigLine(17, 18_000, 20_000.0, "openai:gpt-4o", sent=True, left_s=40.2)


def test_plain_progress_names_a_line_taking_much_of_a_minute_s_tokens() -> None:
    stream = io.StringIO()
    view = PlainProgress(stream)
    # Nothing sent for a while: 0 requests/min, and only this says why.
    view.update(snapshot(elapsed_s=30.0, big_line=WAITING))
    view.update(snapshot(elapsed_s=35.0, big_line=SENT))
    waiting, sent = stream.getvalue().splitlines()
    assert waiting.endswith("bound_by=none big_line=17:18000/20000tpm:waiting")
    assert sent.endswith("big_line=17:18000/20000tpm@openai:gpt-4o:40s")


def test_rich_progress_names_a_line_taking_much_of_a_minute_s_tokens() -> None:
    out = io.StringIO()
    view = RichProgress(Console(file=out, force_terminal=True, width=300))
    view.start()
    view.stop(snapshot(elapsed_s=35.0, big_line=SENT))
    text = out.getvalue()
    assert describe_big_line(WAITING) == (
        "line 17 waits for ~18,000 of 20,000 tokens/min (~54 s of it)"
    )
    assert (
        "line 17 took ~18,000 of 20,000 tokens/min of openai:gpt-4o: the lines after it "
        "wait ~40 s" in text
    )


def test_make_view_picks_by_terminal_and_quiet() -> None:
    tty = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(make_view(tty, quiet=False), RichProgress)
    assert isinstance(make_view(pipe, quiet=False), PlainProgress)
    assert make_view(tty, quiet=True) is None
