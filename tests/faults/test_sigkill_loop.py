"""SIGKILL at random moments, restart the same command, until it finishes: nothing is lost,
nothing is paid for twice beyond what was in flight when each kill landed.

Kills land during start-up, while results are being written, and during the final summary.
A SIGKILL can also cut a large write short, so after some kills half a record is appended
to the output, as such a kill leaves it; the next run must repair it.

``LM_DELUGE_SIGKILL_KILLS=30`` runs the full loop (CI runs a reduced one);
``LM_DELUGE_SIGKILL_SEED`` replays a failing loop.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.faults.support import MODEL, expected_completion, read_records, write_prompts
from tests.loopback import Loopback

# Read when the module is imported: the suite's autouse fixture clears LM_DELUGE_* variables.
KILLS = int(os.environ.get("LM_DELUGE_SIGKILL_KILLS", "8"))
SEED = int(os.environ.get("LM_DELUGE_SIGKILL_SEED", str(random.randrange(1_000_000))))
CONCURRENCY = 8
# Between the server's count of requests in flight and the kill: answers that arrived just
# before the count are written by then, so every request the kill loses is counted.
SETTLE_S = 0.05


@dataclass
class Kill:
    """One kill: where it landed, and what the server saw around it."""

    phase: str
    delivered: bool  # False: the run finished before the signal
    in_flight: int  # requests the server had not answered when counted
    arrived_after: int  # requests that reached the server between the count and the death
    lost: int  # requests the run sent whose answers it did not write

    @property
    def could_lose(self) -> int:
        return self.in_flight + self.arrived_after if self.delivered else 0


class Run:
    """One `lm-deluge run` process, its stderr read line by line as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.summary_started = threading.Event()
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if line.startswith("done: "):
                self.summary_started.set()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL; True when it landed (the process had not exited on its own)."""
        self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return self.process.returncode == -9

    def finish(self, timeout: float) -> int:
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return self.process.returncode


def complete_lines(output: Path) -> int:
    return output.read_bytes().count(b"\n") if output.exists() else 0


def done_ids(output: Path) -> set[str]:
    """Ids with a complete ok record in the output so far."""
    if not output.exists():
        return set()
    found = set()
    for line in output.read_bytes().split(b"\n")[:-1]:
        if b'"status":"ok"' in line:
            found.add(line.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode())
    return found


def tear(output: Path, rng: random.Random) -> None:
    """Append the first part of a record, as a write cut short by a kill leaves it."""
    record = b'{"id":"p0","line":1,"status":"ok","model":"openai:gpt-4.1-mini","completion":"'
    with open(output, "ab") as f:
        f.write(record[: rng.randrange(1, len(record))])


def test_sigkill_loop_loses_nothing_and_pays_only_for_what_was_in_flight(
    loopback: Callable[..., Loopback], cli_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    prompts = max(150, 20 * KILLS)
    ids = write_prompts(tmp_path / "in.jsonl", prompts)
    output = tmp_path / "out.jsonl"
    server = loopback(latency_s=0.05, latency_jitter_s=0.15, seed=SEED)
    env = cli_env(OPENAI_BASE_URL=server.url)
    argv = [sys.executable, "-m", "lm_deluge_cli", "run", "-m", MODEL]
    argv += ["-i", "in.jsonl", "-o", "out.jsonl", "--no-cache"]
    argv += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    argv += ["--max-concurrent-requests", str(CONCURRENCY)]

    # Start-up and writing kills in a random order, then kills during the final summary.
    summary_kills = max(2, KILLS // 6)
    startup_kills = max(1, (KILLS - summary_kills) // 4)
    plan = ["start-up"] * startup_kills + ["writing"] * (KILLS - summary_kills - startup_kills)
    rng.shuffle(plan)
    plan += ["summary"] * summary_kills
    kills: list[Kill] = []
    torn = 0
    spawns = 0
    context = f"seed {SEED} (set LM_DELUGE_SIGKILL_SEED={SEED} to replay)"
    while plan:
        spawns += 1
        assert spawns <= 3 * KILLS, f"too many runs finished before their kill; {context}"
        left = prompts - len(done_ids(output))
        writing_left = plan.count("writing")
        kill = _kill_during(plan[0], argv, env, server, output, rng, left // (writing_left + 1))
        kills.append(kill)
        assert kill.lost <= kill.could_lose, f"{kill}; {context}"
        if kill.delivered:
            plan.pop(0)
        if kill.delivered and len(kills) % 3 == 1:
            tear(output, rng)
            torn += 1

    final = Run(argv, env, tmp_path)
    code = final.finish(timeout=120)
    assert code == 0, f"{''.join(final.lines)}\n{context}"

    records = read_records(output)  # every line is valid JSON: torn tails were repaired
    # The finished run released the lock that the killed ones left behind, and its record of
    # the run replaced any half-written one.
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out.jsonl."))
    assert leftovers == ["out.jsonl.run.json"], leftovers
    per_id = Counter(record["id"] for record in records)
    assert set(per_id) == set(ids), context
    duplicated = {i: n for i, n in per_id.items() if n > 1}
    assert not duplicated, f"ids written more than once: {duplicated}; {context}"
    for record in records:
        assert record["status"] == "ok", f"{record}; {context}"
        assert record["completion"] == expected_completion(int(record["id"][1:])), context

    delivered = [k for k in kills if k.delivered]
    phases = Counter(k.phase for k in delivered)
    assert len(delivered) >= KILLS
    assert phases["start-up"] and phases["writing"] and phases["summary"], (phases, context)
    seen = server.stats()["requests_seen"]
    lost_bound = sum(k.could_lose for k in kills)
    figures = (
        f"{len(delivered)} kills ({dict(phases)}), {torn} torn tails, {spawns + 1} runs; "
        f"{seen} requests for {prompts} ids: {seen - prompts} repeated, at most {lost_bound} "
        f"in flight at the kills (concurrency bound {CONCURRENCY * len(delivered)}); {context}"
    )
    print(figures)
    assert prompts <= seen <= prompts + lost_bound, figures


def _kill_during(
    phase: str,
    argv: list[str],
    env: dict[str, str],
    server: Loopback,
    output: Path,
    rng: random.Random,
    batch: int,
) -> Kill:
    """Start a run, wait for the moment `phase` names (or for the run to end), SIGKILL it."""
    seen_at_start, lines_at_start = server.stats()["requests_seen"], complete_lines(output)
    run = Run(argv, env, output.parent)
    deadline = time.monotonic() + 60
    if phase == "start-up":
        # Python starting, the lock, the resume scan, the first requests going out.
        moment = run.started + rng.uniform(0.0, 0.5)
        while time.monotonic() < moment and run.alive():
            time.sleep(0.002)
    elif phase == "writing":
        target = len(done_ids(output)) + rng.randint(1, max(1, batch))
        while run.alive() and len(done_ids(output)) < target:
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.002)
    else:
        while run.alive() and not run.summary_started.wait(0.01):
            assert time.monotonic() < deadline, "no summary within 60 s"
    before: dict[str, Any] = server.stats()
    if phase != "summary":
        time.sleep(SETTLE_S)
    delivered = run.kill()
    time.sleep(0.05)  # let the server read what the dead process had sent
    after = server.stats()
    sent = after["requests_seen"] - seen_at_start
    written = complete_lines(output) - lines_at_start
    return Kill(
        phase,
        delivered,
        in_flight=before["in_flight"],
        arrived_after=after["requests_seen"] - before["requests_seen"],
        lost=sent - written,
    )
