"""Two processes, one API key: --shard splits the input, --limiter shares one budget.

The mock server allows 2,400 requests/min over one second of burst. Two processes run
--shard 0/2 and 1/2 of 480 prompts at the same time, each told the full 2,400/min (the
key's limit), first each pacing alone, then sharing one Redis limiter (redis-server on
loopback; the row is skipped when it is not installed). Shown: wall time of the slower
process, requests the server answered 429, ids done (each exactly once is checked).
Ideal: (480 - 40 in the first second's burst) / 40 per s = 11 s.

Target with --limiter: every id once, at most 1% of requests answered 429.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
from _report import finish, fmt

RPM = 2400
MODEL = "openai:gpt-4.1-mini"


def run_pair(url: str, inp: Path, work: Path, limiter: str | None) -> dict[str, Any]:
    env = h._client_env({"OPENAI_BASE_URL": url})
    argv = [str(h.our_cli()), "run", "-m", MODEL, "-i", str(inp), "--no-cache", "-q", "--json"]
    argv += ["--max-requests-per-minute", str(RPM), "--max-tokens-per-minute", "0"]
    if limiter:
        argv += ["--limiter", limiter, "--limiter-key", f"bench-{time.time_ns()}"]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*argv, "-o", str(work / f"part{k}.jsonl"), "--shard", f"{k}/2", "--fresh"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for k in range(2)
    ]
    summaries = [json.loads(p.communicate(timeout=300)[0].decode().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - started
    ids = [
        json.loads(line)["id"]
        for k in range(2)
        for line in (work / f"part{k}.jsonl").read_text().splitlines()
    ]
    for s in summaries:
        s.pop("output", None)
        s.pop("cache", None)
    return {"wall_s": wall, "ids": len(ids), "unique_ids": len(set(ids)), "summaries": summaries}


def main() -> None:
    args = h.parse_args(__doc__)
    n = 240 if args.quick else 480
    inp = h.write_prompts(n)
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="lm-deluge-bench-shards-") as tmp:
        work = Path(tmp)
        with (
            h.MockServer("--rpm", RPM, "--burst-seconds", 1) as server,
            h.redis_server(work) as redis_url,
        ):
            for name, limiter in (("each alone", None), ("shared --limiter", redis_url)):
                if name.startswith("shared") and not redis_url:
                    rows.append([name, "redis-server not installed", "", "", ""])
                    continue
                server.reset()
                r = run_pair(server.url, inp, work, limiter)
                stats = server.stats()
                r.update(mode=name, server=stats)
                results.append(r)
                share = stats["rate_limited"] / max(stats["requests_seen"], 1)
                rows.append(
                    [
                        name,
                        f"{r['unique_ids']}/{n}",
                        fmt(r["wall_s"], ".1f"),
                        str(stats["rate_limited"]),
                        fmt(100 * share, ".1f") + "%",
                    ]
                )
    columns = ["mode", "ids done", "wall s", "429s", "429 share"]
    finish("shards", args, {"n": n, "server_rpm": RPM, "processes": 2}, columns, rows, results)


if __name__ == "__main__":
    main()
