"""Progress views over engine statistics: a rich bar on a terminal, a plain line elsewhere.

Views only read `RunStatistics` snapshots; they never touch the engine's state.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Awaitable, Callable
from typing import IO, TypeVar

import anyio
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from lm_deluge_cli.engine.bound_by import Bound, bound_by
from lm_deluge_cli.engine.stats import BigLine, RunStatistics
from lm_deluge_cli.errors import ConfigError

__all__ = [
    "BoundWindow",
    "PlainProgress",
    "ProgressView",
    "RateWindow",
    "RichProgress",
    "describe_big_line",
    "make_view",
    "watch",
    "watched",
]

T = TypeVar("T")

RATE_WINDOW_S = 15.0
PLAIN_INTERVAL_S = 5.0
RICH_INTERVAL_S = 0.25


class RateWindow:
    """Requests/min and tokens/min over the last few seconds of snapshots."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        # The run's start is the first point, so the first update already shows a rate.
        self._points: collections.deque[tuple[float, int, int]] = collections.deque([(0.0, 0, 0)])

    def add(self, stats: RunStatistics) -> tuple[float, float]:
        tokens = stats.input_tokens + stats.output_tokens
        self._points.append((stats.elapsed_s, stats.requests, tokens))
        while len(self._points) > 2 and self._points[0][0] < stats.elapsed_s - self.window_s:
            self._points.popleft()
        t0, r0, k0 = self._points[0]
        span = stats.elapsed_s - t0
        if span <= 0:
            return 0.0, 0.0
        return (stats.requests - r0) * 60 / span, (tokens - k0) * 60 / span


class BoundWindow:
    """What held the run back over the last few seconds of snapshots."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._snapshots: collections.deque[RunStatistics] = collections.deque()

    def add(self, stats: RunStatistics) -> Bound | None:
        start = stats.elapsed_s - self.window_s
        snapshots = self._snapshots
        # Keep the newest snapshot at least a window old, and the ones after it.
        while len(snapshots) > 1 and snapshots[1].elapsed_s <= start:
            snapshots.popleft()
        before = snapshots[0] if snapshots and snapshots[0].elapsed_s <= start else None
        snapshots.append(stats)
        # Until a window has passed, measured from the run's start.
        return bound_by(stats, before)


def eta_seconds(stats: RunStatistics) -> float | None:
    remaining = stats.remaining
    if remaining is None or stats.done == 0 or stats.elapsed_s <= 0:
        return None
    return remaining / (stats.done / stats.elapsed_s)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_cost(stats: RunStatistics) -> str:
    return f"${stats.cost_usd:.4f}" + ("" if stats.cost_known else "+?")


class ProgressView:
    """Receives snapshots; subclasses show them."""

    interval_s = PLAIN_INTERVAL_S

    def start(self) -> None:
        """Called once before the first update."""

    def update(self, stats: RunStatistics) -> None:
        """Show a snapshot."""

    def stop(self, stats: RunStatistics) -> None:
        """Called once with the final snapshot."""


class _StatsColumn(ProgressColumn):
    """One piece of a snapshot, rendered by a function of the task's fields."""

    def __init__(self, render: Callable[[RunStatistics, float, float], str], style: str) -> None:
        super().__init__()
        self._render = render
        self._style = style

    def render(self, task: Task) -> Text:
        stats: RunStatistics | None = task.fields.get("stats")
        if stats is None:
            return Text("")
        return Text(self._render(stats, task.fields["rpm"], task.fields["tpm"]), style=self._style)


class _BoundColumn(ProgressColumn):
    """What holds the run back, when something does, and a line taking much of a minute's
    tokens, when one does."""

    def render(self, task: Task) -> Text:
        bound: Bound | None = task.fields.get("bound")
        stats: RunStatistics | None = task.fields.get("stats")
        parts = [f"held back by {bound.short()}"] if bound is not None else []
        if stats is not None and stats.big_line is not None:
            parts.append(describe_big_line(stats.big_line))
        return Text("; ".join(parts), style="bold red")


def describe_big_line(big: BigLine) -> str:
    """``line 17 takes ~18,000 of 20,000 tokens/min: the lines after it wait ~40 s``."""
    whose = f" of {big.model}" if big.model else ""
    share = f"~{big.tokens:,} of {big.tokens_per_minute:,.0f} tokens/min{whose}"
    if not big.sent:
        return f"line {big.line} waits for {share} (~{big.left_s:.0f} s of it)"
    return f"line {big.line} took {share}: the lines after it wait ~{big.left_s:.0f} s"


class RichProgress(ProgressView):
    """A live bar on stderr for terminals."""

    interval_s = RICH_INTERVAL_S

    def __init__(self, console: Console) -> None:
        self._rates = RateWindow()
        self._bounds = BoundWindow()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            _StatsColumn(lambda s, r, t: f"{s.done + s.skipped}/{s.total or '?'}", "bold"),
            _StatsColumn(lambda s, r, t: f"ok {s.ok} err {s.failed}{_reused(s)}", "green"),
            _StatsColumn(lambda s, r, t: f"{r:,.0f} req/min {t:,.0f} tok/min", "cyan"),
            _StatsColumn(lambda s, r, t: format_cost(s), "yellow"),
            _StatsColumn(lambda s, r, t: f"retries {s.retries} 429s {s.rate_limited}", "magenta"),
            _StatsColumn(lambda s, r, t: f"ETA {format_duration(eta_seconds(s))}", "dim"),
            _BoundColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "running", total=None, stats=None, rpm=0.0, tpm=0.0, bound=None
        )

    def start(self) -> None:
        self._progress.start()

    def update(self, stats: RunStatistics) -> None:
        rpm, tpm = self._rates.add(stats)
        self._progress.update(
            self._task,
            total=stats.total,
            completed=stats.done + stats.skipped,
            stats=stats,
            rpm=rpm,
            tpm=tpm,
            bound=self._bounds.add(stats),
        )

    def stop(self, stats: RunStatistics) -> None:
        self.update(stats)
        self._progress.stop()


def _reused(stats: RunStatistics) -> str:
    """The answers among `ok` that cost no request, when there are any."""
    if not (stats.cached or stats.deduplicated):
        return ""
    return f" (cached {stats.cached} shared {stats.deduplicated})"


class PlainProgress(ProgressView):
    """One line every few seconds, for cron jobs, CI logs and pipes."""

    def __init__(self, stream: IO[str], interval_s: float = PLAIN_INTERVAL_S) -> None:
        self._stream = stream
        self._rates = RateWindow()
        self._bounds = BoundWindow()
        self.interval_s = interval_s

    def update(self, stats: RunStatistics) -> None:
        rpm, tpm = self._rates.add(stats)
        bound = self._bounds.add(stats)
        total = "?" if stats.total is None else str(stats.total)
        line = (
            f"progress: {stats.done + stats.skipped}/{total} ok={stats.ok} errors={stats.failed} "
            f"cached={stats.cached} shared={stats.deduplicated} in_flight={stats.in_flight} "
            f"req/min={rpm:.0f} tok/min={tpm:.0f} "
            f"cost={format_cost(stats)} retries={stats.retries} 429s={stats.rate_limited} "
            f"eta={format_duration(eta_seconds(stats))} bound_by={_bound_field(bound)}"
        )
        big = stats.big_line
        if big is not None:
            # ``big_line=17:18000/20000tpm:40s`` (a model's own limit: ``…tpm@model…``).
            where = f"@{big.model}" if big.model else ""
            state = "waiting" if not big.sent else f"{big.left_s:.0f}s"
            line += (
                f" big_line={big.line}:{big.tokens}/{big.tokens_per_minute:.0f}tpm{where}:{state}"
            )
        print(line, file=self._stream, flush=True)


def _bound_field(bound: Bound | None) -> str:
    """``tokens_per_minute:92%`` (a model's own limit: ``…@model``), or ``none``."""
    if bound is None:
        return "none"
    where = f"@{bound.model}" if bound.model else ""
    return f"{bound.limit}{where}:{bound.waited_fraction:.0%}"


def make_view(console: Console, *, quiet: bool) -> ProgressView | None:
    """A rich bar on a terminal, a plain line otherwise, nothing with --quiet.

    ``LM_DELUGE_PROGRESS_INTERVAL`` sets the seconds between plain lines (default 5).
    """
    if quiet:
        return None
    if console.is_terminal:
        return RichProgress(console)
    raw = os.environ.get("LM_DELUGE_PROGRESS_INTERVAL", "")
    try:
        interval = float(raw) if raw else PLAIN_INTERVAL_S
    except ValueError:
        interval = -1.0
    if not interval > 0:
        raise ConfigError(f"LM_DELUGE_PROGRESS_INTERVAL={raw!r}: give a positive number of seconds")
    return PlainProgress(console.file, interval)


async def watch(view: ProgressView, snapshot: Callable[[], RunStatistics]) -> None:
    """Feed `view` snapshots until cancelled."""
    view.start()
    while True:
        await anyio.sleep(view.interval_s)
        view.update(snapshot())


async def watched(
    view: ProgressView | None,
    snapshot: Callable[[], RunStatistics],
    work: Callable[[], Awaitable[T]],
) -> T:
    """Run `work` while `view` (if any) shows snapshots; the view gets the final one."""
    if view is None:
        return await work()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, view, snapshot)
        try:
            result = await work()
        finally:
            tg.cancel_scope.cancel()
    view.stop(snapshot())
    return result
