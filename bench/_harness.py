"""Shared plumbing for the side-by-side benchmarks: a mock server subprocess, input files,
and measured client runs (wall time, CPU time and peak RSS of the client process)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from _peer import PeerUnavailable, driver_argv

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
HUGE = 10**12  # a limit that never binds, for the peer, which has no "unlimited"
# Our clients run with the defaults (the result cache on, in a fresh directory per run)
# unless their flags say otherwise; "ours-no-cache" is the same run with --no-cache.
CLIENTS = {
    "ours": {},
    "ours-no-cache": {},
    "ours-httpx": {"LM_DELUGE_HTTP_CLIENT": "httpx"},
    "ours-asyncio-loop": {"LM_DELUGE_EVENT_LOOP": "asyncio"},
    "peer": None,
}
CLIENT_FLAGS = {"ours-no-cache": ["--no-cache"]}


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a smoke check.")
    parser.add_argument("--no-peer", action="store_true", help="Run only our client.")
    parser.add_argument(
        "--repeat", type=int, help="Runs per client where noisy; the median is shown (3, quick 1)."
    )
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    return args


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, carrying every run's rate for the record."""
    usable = sorted((r for r in runs if r.get("rate_per_s")), key=lambda r: r["rate_per_s"])
    chosen = dict(usable[len(usable) // 2] if usable else runs[-1])
    chosen["rates_per_s_all"] = [r.get("rate_per_s") for r in runs]
    return chosen


@dataclass
class Proc:
    """One finished subprocess and what it cost."""

    returncode: int | None
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout: str
    timed_out: bool
    # (seconds since start, bytes) of a watched file, sampled while the process ran.
    samples: list[tuple[float, int]] = field(default_factory=list)


def _wait(
    pid: int, deadline: float | None, sample: Callable[[], None] | None = None
) -> tuple[int, Any, bool]:
    timed_out = False
    polling = deadline is not None or sample is not None
    last_sample = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG if polling else 0)
        if done:
            return status, usage, timed_out
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline, timed_out = None, True
        else:
            if sample is not None and time.monotonic() - last_sample >= 0.1:
                sample()
                last_sample = time.monotonic()
            time.sleep(0.02)


def run_measured(
    argv: list[str], env: dict[str, str], log: Path, timeout: float | None = None,
    watch: Path | None = None,
) -> Proc:  # fmt: skip
    """Run argv to completion; its own rusage (via wait4) gives CPU time and peak RSS.
    With `watch`, that file's size is sampled (seconds since start, bytes) meanwhile."""
    log.parent.mkdir(parents=True, exist_ok=True)
    samples: list[tuple[float, int]] = []
    with open(log, "wb") as err, open(log.with_suffix(".stdout"), "w+b") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=ROOT)
        deadline = None if timeout is None else time.monotonic() + timeout

        def sample() -> None:
            if watch is not None:
                with contextlib.suppress(OSError):
                    samples.append((time.perf_counter() - started, watch.stat().st_size))

        status, usage, timed_out = _wait(proc.pid, deadline, sample)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024  # Linux reports kilobytes
    return Proc(proc.returncode, wall, cpu, rss_mb, stdout, timed_out, samples)


class MockServer:
    """`lm-deluge mock-server` on a free loopback port, for the length of a `with` block."""

    def __init__(self, *flags: object) -> None:
        self.flags = [str(f) for f in flags]
        self.url = ""
        self.cpu_s = 0.0

    def __enter__(self) -> MockServer:
        argv = [str(our_cli()), "mock-server", "--port", "0", *self.flags]
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line.startswith("listening on "):
            self._proc.kill()
            raise RuntimeError(f"mock-server did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()
        return self

    def _get(self, path: str, method: str = "GET") -> dict[str, Any]:
        root = self.url.removesuffix("/v1")
        with urllib.request.urlopen(urllib.request.Request(root + path, method=method)) as r:
            return dict(json.load(r))

    def stats(self) -> dict[str, Any]:
        return self._get("/stats")

    def reset(self) -> None:
        self._get("/stats/reset", "POST")

    def __exit__(self, *exc: object) -> None:
        self._proc.send_signal(signal.SIGINT)
        try:
            _, usage, _ = _wait(self._proc.pid, time.monotonic() + 10)
            self.cpu_s = usage.ru_utime + usage.ru_stime
        finally:
            self._proc.returncode = 0
            if self._proc.stdout:
                self._proc.stdout.close()


def our_cli() -> Path:
    beside = Path(sys.executable).parent / "lm-deluge"
    found = beside if beside.exists() else shutil.which("lm-deluge")
    if not found:
        raise SystemExit("lm-deluge is not installed: run the benchmarks with the project's venv")
    return Path(found)


def write_prompts(n: int) -> Path:
    """bench/results/inputs/prompts-N.jsonl (about 60 bytes a line), written once."""
    path = RESULTS / "inputs" / f"prompts-{n}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(f'{{"id": {i}, "prompt": "Prompt number {i}: say something."}}\n')
        tmp.replace(path)
    return path


def count_ok(path: Path) -> int:
    fast_json: ModuleType
    try:
        import orjson as fast_json
    except ImportError:
        fast_json = json
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip() and fast_json.loads(line)["status"] == "ok")


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    return {}


def _client_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LM_DELUGE_")}
    env.update(OPENAI_API_KEY="sk-bench", LM_DELUGE_TOKENIZER="heuristic", **extra)
    return env


def run_ours(
    tag: str, client: str, inp: Path, model: str, rpm: float, tpm: float, conc: int,
    url: str | None = None, timeout: float | None = None, cache_dir: Path | None = None,
    out: Path | None = None, sample_growth: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """`lm-deluge run` on `inp` with the defaults (and the client's flags); rpm/tpm of 0
    mean unlimited. The cache lives in `cache_dir` (kept, for a rerun) or in a fresh
    directory removed afterwards; `out` likewise. With `sample_growth`, the output's size
    is sampled while it runs (see `growth`)."""
    work = RESULTS / "work" / tag / client
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = out or work / "out.jsonl"
    extra = dict(CLIENTS[client] or {}, **({"OPENAI_BASE_URL": url} if url else {}))
    # The default cache, in a directory of its own: the defaults a user gets.
    extra["LM_DELUGE_CACHE_DIR"] = str(cache_dir or work / "cache")
    argv = [str(our_cli()), "run", "-m", model, "-i", str(inp), "-o", str(out)]
    argv += ["--max-requests-per-minute", str(rpm), "--max-tokens-per-minute", str(tpm)]
    argv += ["--max-concurrent-requests", str(conc), "--quiet", "--json"]
    argv += CLIENT_FLAGS.get(client, [])
    log = RESULTS / "logs" / f"{tag}-{client}.log"
    proc = run_measured(
        argv, _client_env(extra), log, timeout, watch=out if sample_growth else None
    )
    summary = _last_json(proc.stdout)
    summary.pop("output", None)  # a path on this machine; says nothing about the run
    if isinstance(summary.get("cache"), dict):
        summary["cache"].pop("location", None)
    if proc.returncode != 0:
        print(f"note: {client} exited {proc.returncode}; see bench/results/logs/{tag}-{client}.log")
    ok = count_ok(out)
    result = _result(client, proc, ok, summary.get("wall_time_s"), summary)
    if sample_growth:
        result["growth"] = growth(proc.samples, out, ok)
    shutil.rmtree(work, ignore_errors=True)
    return result


def growth(samples: list[tuple[float, int]], out: Path, lines: int) -> dict[str, Any]:
    """When the output reached each tenth of its lines, from (seconds, bytes) samples of
    its size (records are near enough the same size: bytes / mean bytes per line), and the
    seconds the first and the last tenth took."""
    size = out.stat().st_size if out.exists() else 0
    if not samples or not lines or not size:
        return {}
    per_line = size / lines
    marks: list[float | None] = []
    for tenth in range(1, 11):
        target = tenth * lines / 10 * per_line
        marks.append(next((t for t, b in samples if b >= target), samples[-1][0]))
    start = next((t for t, b in samples if b > 0), samples[0][0])
    first = (marks[0] or 0) - start
    last = (marks[9] or 0) - (marks[8] or 0)
    return {"tenths_s": marks, "first_tenth_s": first, "last_tenth_s": last}


def run_peer(
    tag: str, inp: Path, rpm: int, tpm: int, conc: int, url: str,
    timeout: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The original library on `inp`, through the driver script, against `url`."""
    argv = driver_argv(url, inp, rpm, tpm, conc)
    proc = run_measured(argv, _client_env({}), RESULTS / "logs" / f"{tag}-peer.log", timeout)
    summary = _last_json(proc.stdout)
    if not summary and not proc.timed_out:
        raise PeerUnavailable(f"driver exited {proc.returncode}; see results/logs/{tag}-peer.log")
    return _result("peer", proc, summary.get("ok", 0), summary.get("wall_time_s"), summary)


def _result(
    client: str, proc: Proc, ok: int, wall: float | None, summary: dict[str, Any]
) -> dict[str, Any]:
    return {
        "client": client,
        "ok": ok,
        "wall_s": wall,
        "rate_per_s": ok / wall if wall else None,
        "process": {k: v for k, v in asdict(proc).items() if k not in ("stdout", "samples")},
        "summary": summary,
    }


def run_client(
    tag: str, client: str, server_flags: list[object], inp: Path, rpm: float, tpm: float,
    conc: int, timeout: float | None = None, skip_peer: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One client against a fresh mock server (full buckets), with the server's counts.

    For the peer, an rpm or tpm of 0 (unlimited) becomes a limit that never binds."""
    if client == "peer" and skip_peer:
        return {"client": client, "unavailable": "skipped (--no-peer)"}
    try:
        with MockServer(*server_flags) as server:
            if client == "peer":
                r = run_peer(
                    tag, inp, int(rpm or HUGE), int(tpm or HUGE), conc, server.url, timeout
                )
            else:
                r = run_ours(tag, client, inp, "openai:bench", rpm, tpm, conc, server.url, timeout)
            r["server"] = server.stats()
        r["server"]["cpu_s"] = round(server.cpu_s, 3)
    except PeerUnavailable as exc:
        print(f"peer unavailable: {exc}")
        return {"client": client, "unavailable": str(exc)}
    seen = r["server"]["requests_seen"]
    r["http_429"] = r["server"]["rate_limited"]
    r["http_429_pct"] = 100 * r["http_429"] / seen if seen else 0.0
    return r


@contextlib.contextmanager
def redis_server(work: Path) -> Iterator[str | None]:
    """A redis-server on a free loopback port, without persistence; None if not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect(("127.0.0.1", port))
            break
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
