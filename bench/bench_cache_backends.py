"""The cache backends on their own: what storing and reading an entry costs, and memory.

For each local backend (SQLite, the default; diskcache) a fresh store takes N entries of
about 600 bytes (an answer's size) in batches of 500 through `set_many`, as the run's
writer stores them, then reads them all back in batches of 256 through `get_many`, as the
look-up stage does. Each backend runs in a process of its own, with a busy event loop
beside the store (a task doing small steps of work, as a run's requests keep it). Shown:
entries/s stored and read, how much the store slowed the loop's own work meanwhile (its
steps per second against a second without the store), and the process's peak RSS.

This is how the default backend was chosen; `bench_cache.py` measures whole runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _harness as h
from _report import finish, fmt

ENTRY_BYTES = 600
WRITE_BATCH = 500
READ_BATCH = 256

_CHILD = """
import asyncio, hashlib, json, resource, sys, time
from lm_deluge_cli.cache import DiskCache, SqliteCache

backend, location, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
write_batch, read_batch, size = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
value = b"x" * size

steps = 0

async def busy(stop):
    global steps
    while not stop.is_set():
        sum(range(2000))
        steps += 1
        await asyncio.sleep(0)

async def main():
    cache = SqliteCache(location) if backend == "sqlite" else DiskCache(location)
    stop = asyncio.Event()
    spinner = asyncio.create_task(busy(stop))
    await asyncio.sleep(1.0)
    out = {"idle_steps_per_s": steps / 1.0}
    for phase in ("write", "read"):
        wall, before = time.perf_counter(), steps
        if phase == "write":
            for i in range(0, n, write_batch):
                await cache.set_many([(k, value) for k in keys[i : i + write_batch]])
        else:
            found = 0
            for i in range(0, n, read_batch):
                found += sum(v is not None for v in await cache.get_many(keys[i : i + read_batch]))
            assert found == n, found
        elapsed = time.perf_counter() - wall
        out[phase] = (elapsed, (steps - before) / elapsed)
    stop.set()
    await spinner
    await cache.aclose()
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


def measure(backend: str, location: str, n: int) -> dict[str, Any]:
    argv = [sys.executable, "-c", _CHILD, backend, location, str(n)]
    argv += [str(WRITE_BATCH), str(READ_BATCH), str(ENTRY_BYTES)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=h.ROOT, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    args = h.parse_args(__doc__)
    n = 20_000 if args.quick else 200_000
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="lm-deluge-bench-backends-") as tmp:
        for backend, location in (
            ("sqlite (default)", str(Path(tmp) / "c.sqlite")),
            ("diskcache", str(Path(tmp) / "diskcache")),
        ):
            r = measure(backend.split()[0], location, n)
            r["backend"] = backend
            results.append(r)
            (w_wall, w_steps), (r_wall, r_steps) = r["write"], r["read"]
            idle = r["idle_steps_per_s"]
            rows.append(
                [
                    backend,
                    fmt(n / w_wall, ",.0f"),
                    fmt(100 * (1 - w_steps / idle), ".0f") + "%",
                    fmt(n / r_wall, ",.0f"),
                    fmt(100 * (1 - r_steps / idle), ".0f") + "%",
                    fmt(r["rss_mb"], ".0f"),
                ]
            )
    columns = ["backend", "stored/s", "loop slowed", "read/s", "loop slowed", "peak RSS MB"]
    params = {"n": n, "entry_bytes": ENTRY_BYTES, "write_batch": WRITE_BATCH}
    params["read_batch"] = READ_BATCH
    finish("cache-backends", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
