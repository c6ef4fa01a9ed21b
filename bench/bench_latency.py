"""Throughput under latency: 1,000 requests in flight against a server that takes 1 s.

The mock server answers each request after one second and has no limits; 10,000 prompts
run 1,000 at a time with the client's limits out of the way. A perfect client completes
1,000 requests/s (10 s in all). Per client: completed requests/s over the run's own wall
time; the ramp, as the server saw it: seconds from the client's first connection to the
first answer written (ideal: the 1 s latency; the rest is the client opening its
connections and sending its first requests); client CPU ms per request, the server's CPU
seconds (it runs on the other core, and a busy server delays answers too) and peak RSS.
Beside ours with the defaults, ours-asyncio-loop is the same run on asyncio's own event
loop instead of uvloop (LM_DELUGE_EVENT_LOOP=asyncio). Each client runs --repeat times
(3; quick 1), interleaved; the median run is shown.

Target: ours >= the peer's requests/s.
"""

from __future__ import annotations

import _harness as h
from _report import finish, fmt

CONCURRENCY = 1_000
LATENCY_S = 1.0


def main() -> None:
    args = h.parse_args(__doc__)
    n = 2_000 if args.quick else 10_000
    inp = h.write_prompts(n)
    ideal = CONCURRENCY / LATENCY_S
    # ours-asyncio-loop: the defaults on asyncio's own loop instead of uvloop.
    clients = ("ours", "ours-asyncio-loop", "peer")
    runs: dict[str, list[dict[str, object]]] = {c: [] for c in clients}
    for _ in range(args.repeat):  # interleaved, so drift on the machine hits every client
        for client in clients:
            r = h.run_client(
                "latency", client, ["--latency", LATENCY_S], inp, 0, 0, CONCURRENCY,
                timeout=600, skip_peer=args.no_peer,
            )  # fmt: skip
            runs[client].append(r)
    results, rows = [], []
    for client in clients:
        r = h.median_run(runs[client])
        results.append(r)
        if "unavailable" in r:
            rows.append([client, "peer unavailable", "", "", "", "", "", ""])
            continue
        proc, server = r["process"], r["server"]
        r["cpu_ms_per_request"] = 1000 * proc["cpu_s"] / r["ok"] if r["ok"] else None
        rows.append(
            [
                client,
                f"{r['ok']}/{n}",
                fmt(r["wall_s"]),
                fmt(r["rate_per_s"], ".0f") + f" / {ideal:.0f}",
                fmt(server.get("first_answer_s"), ".2f") + f" / {LATENCY_S:g}",
                fmt(r["cpu_ms_per_request"], ".3f"),
                fmt(server.get("cpu_s"), ".1f"),
                fmt(proc["max_rss_mb"], ".0f"),
            ]
        )
    columns = [
        "client",
        "ok",
        "wall s",
        "req/s (ideal)",
        "first answer s (ideal)",
        "CPU ms/req",
        "server CPU s",
        "peak RSS MB",
    ]
    params = {
        "n": n,
        "concurrency": CONCURRENCY,
        "server_latency_s": LATENCY_S,
        "repeat": args.repeat,
    }
    finish("latency", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
