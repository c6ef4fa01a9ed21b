"""Two processes, one API key: shards split the input, a Redis limiter shares the budget."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..conftest import CANARY_KEY, StartMockServer
from ..redis_server import RedisServer

PROMPTS = 240
RPM = 2400  # the server's limit, over 1 s; the job asks for exactly this much in all


def test_two_shards_sharing_a_redis_limiter_stay_within_one_limit(
    start_mock_server: StartMockServer,
    redis_server: RedisServer,
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    url, _ = start_mock_server(requests_per_minute=RPM, burst_s=1.0)
    rows = write_prompts(tmp_path / "in.jsonl", PROMPTS)
    env = cli_env(OPENAI_BASE_URL=url, OPENAI_API_KEY=CANARY_KEY)
    key = f"shards-{tmp_path.name}"
    common = [sys.executable, "-m", "lm_deluge_cli", "run", "-m", "openai:gpt-4.1-mini"]
    common += ["-i", "in.jsonl", "--no-cache", "--quiet", "--json"]
    common += ["--limiter", redis_server.url, "--limiter-key", key]
    common += ["--max-requests-per-minute", str(RPM), "--max-tokens-per-minute", "0"]
    runs = [
        subprocess.Popen(
            [*common, "-o", f"part{k}.jsonl", "--shard", f"{k}/2"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(2)
    ]
    summaries = []
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        summaries.append(json.loads(out.decode().strip().splitlines()[-1]))
    ids = [
        json.loads(line)["id"]
        for k in range(2)
        for line in (tmp_path / f"part{k}.jsonl").read_text().splitlines()
    ]
    assert sorted(ids) == sorted(row["id"] for row in rows)
    assert all(s["ok"] > PROMPTS / 4 for s in summaries)
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as answer:
        server = json.load(answer)
    # Together within the one limit: at most 1% of the requests answered 429.
    assert server["ok"] == PROMPTS
    assert server["rate_limited"] <= 0.01 * server["requests_seen"]
    # …and not by going slow: 240 requests at 40/s take about 5 s after the first second's
    # burst; each process alone would have been allowed the whole rate.
    assert max(s["wall_time_s"] for s in summaries) < 15
