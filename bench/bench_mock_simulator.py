"""The in-process mock's own cost: microseconds of CPU per request in `Simulator.handle`.

A `mock:fast` run answers every line in the same process, so what the simulator spends per
request comes out of the run's budget (100 µs a line for 10,000 lines/s). This hands a
simulator with the `mock:fast` settings (no latency, no limits, no faults) N distinct plain
requests per wire format, as the engine sends them (one user message, 512 output tokens),
and times `handle` alone, in the process's CPU time (other work on the machine inflates it
less than wall time): bodies are encoded beforehand, nothing is sent anywhere. Each format
runs `--repeat` times (at least 5), interleaved with the others; the table shows the best
and the median run, in µs per request, and requests/s at the best.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import _harness as h
import orjson
from _report import finish, fmt

from lm_deluge_cli.mock.formats import Route, match_route
from lm_deluge_cli.mock.simulator import MockSettings, Simulator


def _prompt(i: int) -> str:
    return f"Prompt number {i}: say something."


def _user(i: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": _prompt(i)}]


# (name, path, headers, body of prompt i)
_BEARER = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
_CASES: list[tuple[str, str, dict[str, str], Callable[[int], dict[str, Any]]]] = [
    (
        "openai chat (mock:fast)",
        "/v1/chat/completions",
        _BEARER,
        lambda i: {
            "model": "fast",
            "messages": _user(i),
            "max_completion_tokens": 512,
            "temperature": 0.0,
            "top_p": 1.0,
        },
    ),
    (
        "openai chat, system",
        "/v1/chat/completions",
        _BEARER,
        lambda i: {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                *_user(i),
            ],
            "max_completion_tokens": 512,
        },
    ),
    (
        "openai responses",
        "/v1/responses",
        _BEARER,
        lambda i: {
            "model": "gpt-4.1-mini",
            "input": _prompt(i),
            "max_output_tokens": 512,
        },
    ),
    (
        "anthropic",
        "/anthropic/v1/messages",
        {"x-api-key": "sk-bench", "anthropic-version": "2023-06-01"},
        lambda i: {
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 512,
            "messages": _user(i),
        },
    ),
    (
        "gemini",
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        {"x-goog-api-key": "sk-bench"},
        lambda i: {
            "contents": [{"role": "user", "parts": [{"text": _prompt(i)}]}],
            "generationConfig": {"maxOutputTokens": 512},
        },
    ),
    (
        "mistral",
        "/mistral/v1/chat/completions",
        _BEARER,
        lambda i: {
            "model": "mistral-large-latest",
            "messages": _user(i),
            "max_tokens": 512,
        },
    ),
    (
        "cohere",
        "/cohere/v2/chat",
        _BEARER,
        lambda i: {
            "model": "command-a-03-2025",
            "messages": _user(i),
            "max_tokens": 512,
        },
    ),
    (
        "openai embeddings (4 texts)",
        "/v1/embeddings",
        _BEARER,
        lambda i: {
            "model": "text-embedding-3-small",
            "input": [f"Text {i}.{k}: something to embed." for k in range(4)],
        },
    ),
]


def time_handle(route: Route, headers: dict[str, str], bodies: list[bytes]) -> float:
    """Seconds per request for a fresh mock:fast simulator to answer every body once."""
    sim = Simulator(MockSettings())
    handle = sim.handle
    started = time.process_time()
    for body in bodies:
        handle(route, headers, body, None)
    took = time.process_time() - started
    assert sim.statistics().ok == len(bodies)
    return took / len(bodies)


def main() -> None:
    args = h.parse_args(__doc__)
    n = 5_000 if args.quick else 20_000
    repeat = max(args.repeat, 5)
    prepared = []
    for name, path, headers, make in _CASES:
        route = match_route(path)
        assert route is not None, path
        prepared.append((name, route, headers, [orjson.dumps(make(i)) for i in range(n)]))
    runs: dict[str, list[float]] = {name: [] for name, *_ in prepared}
    for _ in range(repeat):
        for name, route, headers, bodies in prepared:
            runs[name].append(time_handle(route, headers, bodies) * 1e6)
    rows, results = [], []
    for name, us in runs.items():
        best = min(us)
        rows.append([name, fmt(best), fmt(statistics.median(us)), fmt(1e6 / best, ",.0f")])
        results.append({"format": name, "us_per_request": us})
    columns = ["format", "best µs/req", "median µs/req", "req/s at best"]
    finish("mock-simulator", args, {"n": n, "repeat": repeat}, columns, rows, results)


if __name__ == "__main__":
    main()
