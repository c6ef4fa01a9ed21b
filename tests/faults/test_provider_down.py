"""A provider that goes down mid-run (the server stops, then starts again on the same port)
costs time, not records."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.faults.support import Finished, expected_completion
from tests.loopback import Loopback

PROMPTS = 40
CONCURRENCY = 4
DOWN_S = 2.0


def test_an_outage_mid_run_costs_time_not_records(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished], tmp_path: Path
) -> None:
    server = loopback(latency_s=0.05)
    output = tmp_path / "out.jsonl"
    outage: dict[str, float] = {}

    def take_down_then_up() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if output.exists() and output.read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.01)
        outage["in_flight"] = server.stats()["in_flight"]
        server.suspend()
        outage["down_at"] = time.monotonic()
        time.sleep(DOWN_S)
        server.resume()

    operator = threading.Thread(target=take_down_then_up)
    operator.start()
    finished = run_against(
        server.url,
        prompts=PROMPTS,
        max_attempts=10,
        max_concurrent_requests=CONCURRENCY,
    )
    operator.join()
    assert "down_at" in outage, "the run ended before the outage began"

    ids = Counter(record["id"] for record in finished.records)
    assert ids == Counter(f"p{i}" for i in range(PROMPTS))
    for record in finished.records:
        assert record["status"] == "ok", record["error"]
        assert record["completion"] == expected_completion(int(record["id"][1:]))
    assert finished.report.exit_code == 0
    # The outage was noticed and waited out.
    assert finished.summary["retries"] > 0
    assert finished.seconds >= DOWN_S
    assert max(record["attempts"] for record in finished.records) > 1
    # Only requests cut by the outage reached the server twice.
    extra = server.stats()["requests_seen"] - PROMPTS
    assert 0 <= extra <= CONCURRENCY, outage
