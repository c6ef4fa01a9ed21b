"""Run every benchmark in turn, passing the same flags (--quick, --no-peer) to each.

Each benchmark prints its own table and saves its JSON under bench/results/; this prints
which ones ran to completion and the exact command.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import _harness as h
from _report import command

BENCHMARKS = [
    "bench_rate_limits.py",
    "bench_burst_capacity.py",
    "bench_overhead.py",
    "bench_latency.py",
    "bench_memory.py",
    "bench_cache.py",
    "bench_cache_backends.py",
    "bench_mock_simulator.py",
    "bench_shards.py",
    "bench_embed.py",
    "bench_prompt_cache.py",
]


def main() -> None:
    args = h.parse_args(__doc__)
    flags = [f for f in ("--quick", "--no-peer") if getattr(args, f[2:].replace("-", "_"))]
    rows: list[list[str]] = []
    for script in BENCHMARKS:
        print(f"\n### {script} {' '.join(flags)}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(Path(h.BENCH) / script), *flags])
        took = time.perf_counter() - started
        rows.append([script, "ok" if done.returncode == 0 else f"exit {done.returncode}"])
        rows[-1].append(f"{took:.0f}")
    print("\n== run_all ==")
    for name, status, seconds in rows:
        print(f"{name:<26} {status:<8} {seconds:>5} s")
    print(f"command: {command()}")
    sys.exit(0 if all(r[1] == "ok" for r in rows) else 1)


if __name__ == "__main__":
    main()
