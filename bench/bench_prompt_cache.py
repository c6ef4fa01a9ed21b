"""Prompt caching at high concurrency: what a shared system prompt costs with and without
warm-up.

N prompts (1,000; quick 200) share one system prompt of about 2,000 tokens and each asks its
own short question. They go to an Anthropic model (claude-sonnet-4-5's prices) on the mock
server, which emulates Anthropic's prompt cache and answers after 0.5 s, at 256 concurrent,
limits off, with `--prompt-cache system`: once with warm-up (the default: the first request
for the prefix goes alone, the others wait for its answer and read the cache) and once with
`--prompt-cache-warmup 0` (every request starts at once). Shown: the cache writes (requests
that wrote the prefix, and tokens), reads, the run's cost, and the cost over the ideal one
(one write of the prefix, every other request reading it, the same questions and answers),
and the wall time.

Target (with warm-up): at most one write per prefix, cost within 5% of the ideal.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import _harness as h
from _report import finish, fmt

from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.results import Usage

MODEL = "anthropic:claude-sonnet-4-5"
SERVER_LATENCY_S = 0.5
CONCURRENCY = 256
# About 2,000 tokens: a policy text repeated, as a long shared instruction would be.
SYSTEM = " ".join(
    f"Rule {i}: answer in plain words, cite the section you rely on, and keep to the "
    "customer's own question; never guess a figure you were not given."
    for i in range(56)
)


def write_input(n: int, work: Path) -> Path:
    path = work / f"shared-system-{n}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            line = {"id": i, "system": SYSTEM, "prompt": f"Question {i}: may I return item {i}?"}
            f.write(json.dumps(line) + "\n")
    return path


def run(tag: str, server: h.MockServer, inp: Path, out: Path, *flags: str) -> dict[str, Any]:
    base = server.url.removesuffix("/v1") + "/anthropic"
    argv = [str(h.our_cli()), "run", "-m", MODEL, "-i", str(inp), "-o", str(out)]
    argv += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    argv += ["--max-concurrent-requests", str(CONCURRENCY), "--prompt-cache", "system"]
    argv += ["--no-cache", "--quiet", "--json", *flags]
    env = h._client_env({"ANTHROPIC_BASE_URL": base, "ANTHROPIC_API_KEY": "sk-ant-bench"})
    proc = h.run_measured(argv, env, h.RESULTS / "logs" / f"prompt-cache-{tag}.log")
    summary = h._last_json(proc.stdout)
    summary.pop("output", None)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {
        "tag": tag,
        "wall_s": summary.get("wall_time_s"),
        "summary": summary,
        "server": server.stats(),
        "writers": sum(1 for r in records if (r.get("usage") or {}).get("cache_write_tokens")),
        "ideal_cost_usd": ideal_cost(records),
        "rc": proc.returncode,
    }


def ideal_cost(records: list[dict[str, Any]]) -> float | None:
    """What the same requests cost when one writes the cached prefix and every other reads
    it: each record's usage with its cache tokens moved so."""
    model = load_registry().lookup(MODEL)
    usages = [Usage.from_record(r["usage"]) for r in records if r.get("usage")]
    prefix = max((u.cached_input_tokens + u.cache_write_tokens for u in usages), default=0)
    total = 0.0
    for index, usage in enumerate(usages):
        moved = Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=0 if index == 0 else prefix,
            cache_write_tokens=prefix if index == 0 else 0,
        )
        cost = model.cost(moved)
        if cost is None:
            return None
        total += cost
    return total


def main() -> None:
    args = h.parse_args(__doc__)
    n = 200 if args.quick else 1_000
    rows: list[list[str]] = []
    results: list[dict[str, Any]] = []
    runs = (("warm-up (default)", ()), ("no warm-up", ("--prompt-cache-warmup", "0")))
    with tempfile.TemporaryDirectory(prefix="lm-deluge-bench-prompt-cache-") as tmp:
        work = Path(tmp)
        inp = write_input(n, work)
        for tag, flags in runs:
            # A fresh server each time: its prompt cache starts empty.
            with h.MockServer("--latency", SERVER_LATENCY_S) as server:
                out = work / f"{len(results)}.jsonl"
                result = run(tag.split(" ")[0], server, inp, out, *flags)
            results.append(result)
            stats, summary = result["server"], result["summary"]
            cost, ideal = summary.get("cost_usd"), result["ideal_cost_usd"]
            rows.append(
                [
                    tag,
                    f"{summary.get('ok', 0)}/{n}",
                    str(result["writers"]),
                    fmt(stats.get("cache_write_tokens"), ",d"),
                    fmt(stats.get("cache_read_tokens"), ",d"),
                    fmt(cost, ".4f"),
                    fmt(ideal, ".4f"),
                    fmt(cost / ideal if cost and ideal else None, ".3f"),
                    fmt(result["wall_s"], ".2f"),
                ]
            )
    columns = [
        "run",
        "ok",
        "writers",
        "write tokens",
        "read tokens",
        "cost $",
        "ideal $",
        "cost/ideal",
        "wall s",
    ]
    params = {
        "prompts": n,
        "model": MODEL,
        "latency_s": SERVER_LATENCY_S,
        "concurrency": CONCURRENCY,
    }
    finish("prompt_cache", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
