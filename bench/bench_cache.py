"""Cache hits and identical lines: how fast answers that cost no request come back.

For each cache backend (the default, a SQLite file in the cache directory; a diskcache
directory; Redis on loopback when redis-server is installed) a job of N distinct prompts
runs twice into fresh outputs against the mock server answering after 0.2 s (256
concurrent, limits off): the first run fills the cache, the second must send zero
requests. Shown: lines/s of each run over the process's wall time (start-up included),
the rerun's share of the first run's time, and the rerun's requests. Two reference rows:
the same job with --no-cache, and N lines holding only 100 distinct prompts with
--no-cache (identical lines share one request).

Target: a rerun sends 0 requests and takes a small fraction of the first run's time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import _harness as h
from _report import finish, fmt

DISTINCT_IN_DUPLICATE_JOB = 100
SERVER_LATENCY_S = 0.2
CONCURRENCY = 256
MODEL = "openai:gpt-4.1-mini"


def run(tag: str, url: str, inp: Path, out: Path, *flags: str) -> dict[str, Any]:
    argv = [str(h.our_cli()), "run", "-m", MODEL, "-i", str(inp), "-o", str(out)]
    argv += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    argv += ["--max-concurrent-requests", str(CONCURRENCY), "--quiet", "--json", *flags]
    env = h._client_env({"OPENAI_BASE_URL": url})
    proc = h.run_measured(argv, env, h.RESULTS / "logs" / f"cache-{tag}.log")
    summary = h._last_json(proc.stdout)
    summary.pop("output", None)
    summary.pop("cache", None)  # a path on this machine
    return {"wall_s": proc.wall_s, "cpu_s": proc.cpu_s, "summary": summary, "rc": proc.returncode}


def write_duplicates(n: int) -> Path:
    path = h.RESULTS / "inputs" / f"duplicates-{n}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f'{{"id": {i}, "prompt": "Question {i % DISTINCT_IN_DUPLICATE_JOB}?"}}\n')
    return path


def main() -> None:
    args = h.parse_args(__doc__)
    n = 2_000 if args.quick else 20_000
    inp = h.write_prompts(n)
    rows: list[list[str]] = []
    results: list[dict[str, Any]] = []
    server = h.MockServer("--latency", SERVER_LATENCY_S)
    with tempfile.TemporaryDirectory(prefix="lm-deluge-bench-cache-") as tmp, server:
        work, url = Path(tmp), server.url
        with h.redis_server(work) as redis_url:
            backends = [("sqlite (default)", str(work / "c.sqlite"))]
            backends.append(("diskcache", str(work / "diskcache")))
            backends.append(("redis", redis_url) if redis_url else ("redis", ""))
            for name, spec in backends:
                if not spec:
                    rows.append([name, "redis-server not installed", "", "", "", ""])
                    continue
                tag = name.split()[0]
                fill = run(f"{tag}-fill", url, inp, work / f"{tag}-1.jsonl", "--cache", spec)
                hits = run(f"{tag}-hits", url, inp, work / f"{tag}-2.jsonl", "--cache", spec)
                result: dict[str, Any] = {"backend": name, "fill": fill, "hits": hits}
                result["fill_lines_per_s"] = n / fill["wall_s"]
                result["hit_lines_per_s"] = n / hits["wall_s"]
                result["rerun_time_ratio"] = hits["wall_s"] / fill["wall_s"]
                results.append(result)
                rows.append(
                    [
                        name,
                        fmt(result["fill_lines_per_s"], ",.0f"),
                        fmt(result["hit_lines_per_s"], ",.0f"),
                        fmt(100 * result["rerun_time_ratio"], ".0f") + "%",
                        str(hits["summary"].get("requests")),
                        str(hits["summary"].get("cached")),
                    ]
                )
        plain = run("none", url, inp, work / "none.jsonl", "--no-cache")
        results.append({"backend": "none", "run": plain, "lines_per_s": n / plain["wall_s"]})
        rows.append(["--no-cache", fmt(n / plain["wall_s"], ",.0f"), "-", "-", "-", "-"])
        dup_inp = write_duplicates(n)
        dup = run("duplicates", url, dup_inp, work / "dup.jsonl", "--no-cache")
        dup_rate = n / dup["wall_s"]
        results.append({"backend": "none, 100 distinct", "run": dup, "lines_per_s": dup_rate})
        rows.append(
            [
                f"--no-cache, {DISTINCT_IN_DUPLICATE_JOB} distinct",
                fmt(dup_rate, ",.0f"),
                "-",
                "-",
                f"{dup['summary'].get('requests')} sent",
                f"{dup['summary'].get('deduplicated')} shared",
            ]
        )
    columns = ["cache", "1st run lines/s", "rerun lines/s", "rerun/1st time"]
    columns += ["rerun requests", "rerun cached"]
    params = {"n": n, "server_latency_s": SERVER_LATENCY_S, "concurrency": CONCURRENCY}
    finish("cache", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
