"""Client overhead: requests/s and CPU per request against a server that answers at once.

The mock server has no latency and no limits; 10,000 prompts run 256 at a time with the
client's limits off (0 = unlimited for ours; limits that never bind for the peer). Four
clients: ours with the defaults (aiohttp, the result cache on in a fresh directory), ours
with --no-cache, ours with LM_DELUGE_HTTP_CLIENT=httpx, and the original lm-deluge. Per
client: completed requests/s over the run's own wall time,
client CPU ms per request (the whole process, interpreter start and imports included),
peak RSS, and the server's CPU time, which shows when the one-core server is the limit.
Each client runs --repeat times (3; quick 1), interleaved; the median run is shown.

Targets: ours (the defaults) >= 1.3x the peer's requests/s in the same run; the cache
costs at most 10% (ours against ours --no-cache).
"""

from __future__ import annotations

import _harness as h
from _report import finish, fmt

CONCURRENCY = 256


def main() -> None:
    args = h.parse_args(__doc__)
    n = 1_000 if args.quick else 10_000
    inp = h.write_prompts(n)
    clients = ("ours", "ours-no-cache", "ours-httpx", "peer")
    runs: dict[str, list[dict[str, object]]] = {c: [] for c in clients}
    for _ in range(args.repeat):  # interleaved, so drift on the machine hits every client
        for client in clients:
            r = h.run_client(
                "overhead", client, [], inp, 0, 0, CONCURRENCY,
                timeout=600, skip_peer=args.no_peer,
            )  # fmt: skip
            runs[client].append(r)
    results, rows = [], []
    for client in clients:
        r = h.median_run(runs[client])
        results.append(r)
        if "unavailable" in r:
            rows.append([client, "peer unavailable", "", "", "", ""])
            continue
        proc = r["process"]
        r["cpu_ms_per_request"] = 1000 * proc["cpu_s"] / r["ok"] if r["ok"] else None
        rows.append(
            [
                client,
                f"{r['ok']}/{n}",
                fmt(r["rate_per_s"], ".0f"),
                fmt(r["cpu_ms_per_request"], ".3f"),
                fmt(proc["max_rss_mb"], ".0f"),
                fmt(r["server"]["cpu_s"], ".2f"),
            ]
        )
    peer = next((r for r in results if r["client"] == "peer" and r.get("rate_per_s")), None)
    if peer:
        for r, row in zip(results, rows, strict=True):
            ratio = r["rate_per_s"] / peer["rate_per_s"] if r.get("rate_per_s") else None
            r["throughput_vs_peer"] = ratio
            row.append(fmt(ratio, ".2f") + "x")
    plain = next((r for r in results if r["client"] == "ours-no-cache"), None)
    ours = results[0]
    if plain and plain.get("rate_per_s") and ours.get("rate_per_s"):
        ours["cache_cost"] = 1 - ours["rate_per_s"] / plain["rate_per_s"]
        print(f"the cache costs {100 * ours['cache_cost']:.1f}% of --no-cache's requests/s")
    columns = ["client", "ok", "req/s", "CPU ms/req", "peak RSS MB", "server CPU s"]
    columns += ["vs peer"] if peer else []
    params = {"n": n, "concurrency": CONCURRENCY, "server_latency_s": 0, "repeat": args.repeat}
    finish("overhead", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
