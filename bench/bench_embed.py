"""Embeddings: texts per second when many texts share a request, and a rerun from the cache.

N distinct texts (``{"id", "text"}`` lines) go through `lm-deluge embed` to the loopback
mock server's OpenAI embeddings route, answering after 0.2 s (256 concurrent, limits
off, 64-dimension vectors): once with the model's own batch size (2,048 texts a request
for text-embedding-3-small), once with 100 a request, once with one text a request
(what a client without batching does), and a rerun of the first into a fresh output from
the cache it filled. Shown: texts/s over the process's wall time (start-up included),
requests sent, and the server's count of texts embedded.

Target: requests ≈ N / batch size; the rerun sends 0 requests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import _harness as h
from _report import finish, fmt

SERVER_LATENCY_S = 0.2
CONCURRENCY = 256
MODEL = "openai:text-embedding-3-small"


def write_texts(n: int) -> Path:
    path = h.RESULTS / "inputs" / f"texts-{n}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(f'{{"id": {i}, "text": "Text number {i}, a sentence to embed."}}\n')
    return path


def embed(tag: str, server: h.MockServer, inp: Path, out: Path, *flags: str) -> dict[str, Any]:
    server.reset()
    argv = [str(h.our_cli()), "embed", "-m", MODEL, "-i", str(inp), "-o", str(out)]
    argv += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    argv += ["--max-concurrent-requests", str(CONCURRENCY), "--dimensions", "64"]
    argv += ["--quiet", "--json", *flags]
    env = h._client_env({"OPENAI_BASE_URL": server.url})
    proc = h.run_measured(argv, env, h.RESULTS / "logs" / f"embed-{tag}.log")
    summary = h._last_json(proc.stdout)
    summary.pop("output", None)
    summary.pop("cache", None)  # a path on this machine
    stats = server.stats()
    return {
        "wall_s": proc.wall_s,
        "cpu_s": proc.cpu_s,
        "summary": summary,
        "rc": proc.returncode,
        "server_inputs_embedded": stats.get("inputs_embedded"),
        "server_requests": stats.get("requests_seen"),
    }


def main() -> None:
    args = h.parse_args(__doc__)
    n = 10_000 if args.quick else 100_000
    one_per_request = n // 10
    inp = write_texts(n)
    small = write_texts(one_per_request)
    rows: list[list[str]] = []
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="lm-deluge-bench-embed-") as tmp,
        h.MockServer("--latency", SERVER_LATENCY_S) as server,
    ):
        work = Path(tmp)
        cache = ["--cache", str(work / "cache")]
        runs = [
            (
                "model's batch size, filling the cache",
                n,
                embed("batched", server, inp, work / "a.jsonl", *cache),
            ),
            (
                "100 a request",
                n,
                embed("100", server, inp, work / "b.jsonl", "--no-cache", "--batch-size", "100"),
            ),
            (
                "1 a request",
                one_per_request,
                embed("1", server, small, work / "c.jsonl", "--no-cache", "--batch-size", "1"),
            ),
            ("rerun from the cache", n, embed("rerun", server, inp, work / "d.jsonl", *cache)),
        ]
        for label, texts, run in runs:
            rate = texts / run["wall_s"]
            results.append({"run": label, "texts": texts, "texts_per_s": rate, **run})
            rows.append(
                [
                    label,
                    f"{texts:,}",
                    fmt(rate, ",.0f"),
                    str(run["summary"].get("requests")),
                    str(run["server_inputs_embedded"]),
                    str(run["summary"].get("ok")),
                    str(run["summary"].get("cached")),
                ]
            )
    columns = ["batching", "texts", "texts/s", "requests", "server embedded", "ok", "cached"]
    params = {"n": n, "server_latency_s": SERVER_LATENCY_S, "concurrency": CONCURRENCY}
    finish("embed", args, params, columns, rows, results)


if __name__ == "__main__":
    main()
