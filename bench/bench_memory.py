"""Time and memory at scale, with the defaults: a million lines on the built-in instant model.

1. A 1,000,000-line input (about 60 MB) on our in-process `mock:fast` model with the
   defaults (the result cache on, in a fresh directory), limits off, 256 concurrent:
   lines/s over the whole run, the seconds the first and the last tenth of the lines
   took (from the output's growth), peak RSS.
2. The same lines again into another output: every answer from the cache that run 1
   filled; lines/s, requests (0), peak RSS.
3. Run 1 with --no-cache, beside it.
4. Skipped with --quick: ours and the original lm-deluge on 100,000 prompts against the
   loopback mock server, for peak RSS side by side (the peer keeps every prompt and
   response in memory until the batch ends).

Targets: run 1 ≥ 10,000 lines/s, its last tenth within 20% of its first, peak RSS
< 120 MB; run 2 ≥ 20,000 lines/s with 0 requests. --quick runs 100,000 lines.
"""

from __future__ import annotations

import shutil
from typing import Any

import _harness as h
from _report import finish, fmt

CONCURRENCY = 256


def _row(label: str, client: str, r: dict[str, object], n: int) -> list[str]:
    proc = r["process"]
    assert isinstance(proc, dict)
    summary = r.get("summary") or {}
    assert isinstance(summary, dict)
    growth = r.get("growth") or {}
    assert isinstance(growth, dict)
    tenths = "-"
    if growth:
        tenths = f"{growth['first_tenth_s']:.1f} / {growth['last_tenth_s']:.1f}"
    return [
        label,
        client,
        f"{r['ok']}/{n}",
        str(summary.get("requests", "-")),
        fmt(r["wall_s"]),
        fmt(r["rate_per_s"], ",.0f"),
        tenths,
        fmt(proc["max_rss_mb"], ".0f"),
    ]


def main() -> None:
    args = h.parse_args(__doc__)
    n = 100_000 if args.quick else 1_000_000
    inp = h.write_prompts(n)
    results, rows = [], []
    keep = h.RESULTS / "work" / "memory-kept"
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    cache = keep / "cache"
    cases: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("defaults", "ours", {"cache_dir": cache}),
        ("rerun from the cache", "ours", {"cache_dir": cache, "out": keep / "again.jsonl"}),
        ("--no-cache", "ours-no-cache", {}),
    )
    for label, client, extra in cases:
        r = h.run_ours(
            f"memory-{n}", client, inp, "mock:fast", 0, 0, CONCURRENCY, timeout=3_600,
            sample_growth=True, **extra,
        )  # fmt: skip
        r["case"], r["n"] = label, n
        results.append(r)
        rows.append(_row(label, client, r, n))
    shutil.rmtree(keep, ignore_errors=True)
    if args.quick:
        rows.append(["via server", "both", "skipped (--quick)", "", "", "", "", ""])
    else:
        small = 100_000
        server_inp = h.write_prompts(small)
        for client in ("ours", "peer"):
            r = h.run_client(
                "memory-server", client, [], server_inp, 0, 0, CONCURRENCY,
                timeout=3_600, skip_peer=args.no_peer,
            )  # fmt: skip
            r["case"], r["n"] = "via server", small
            results.append(r)
            if "unavailable" in r:
                rows.append(["via server", client, "peer unavailable", "", "", "", "", ""])
            else:
                rows.append(_row("via server", client, r, small))
    columns = ["case", "client", "ok", "requests", "wall s", "lines/s"]
    columns += ["first / last tenth s", "peak RSS MB"]
    params = {"n": n, "concurrency": CONCURRENCY, "model": "mock:fast"}
    finish("memory", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
