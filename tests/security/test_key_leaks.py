"""The canary key never appears in anything a run produces: output, manifest, lock, cache,
stdout, stderr (with --verbose), error records, nor the traceback of an internal error.

Each run is a real process: what it prints as it shuts down is searched too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CANARY_KEY, StartMockServer

# A distinctive part too, in case something prints the key shortened or split.
FORMS = (CANARY_KEY, CANARY_KEY[-16:])


def leaks(data: bytes) -> list[str]:
    return [form for form in FORMS if form.encode() in data]


def produced_files(root: Path) -> list[Path]:
    """What the run wrote: every file but the test's own input and job file."""
    return [p for p in root.rglob("*") if p.is_file() and p.name not in ("in.jsonl", "job.toml")]


def env_for(tmp_path: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(
        LM_DELUGE_TOKENIZER="heuristic",
        LM_DELUGE_CACHE_DIR=str(tmp_path / "cache"),
        OPENAI_API_KEY=CANARY_KEY,
        OPENAI_BASE_URL=base_url,
        **extra,
    )
    return env


def write_input(tmp_path: Path, count: int) -> None:
    rows = "".join(f'{{"id": "p{i}", "prompt": "question {i}"}}\n' for i in range(count))
    (tmp_path / "in.jsonl").write_text(rows)


def run(tmp_path: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[bytes]:
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "openai:gpt-4.1-mini", "-v"]
    return subprocess.run(
        [sys.executable, "-m", "lm_deluge_cli", *args, *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )


def assert_no_leak(
    tmp_path: Path, done: subprocess.CompletedProcess[bytes], *, output: bool = True
) -> None:
    assert leaks(done.stdout) == [], "stdout"
    assert leaks(done.stderr) == [], "stderr"
    files = produced_files(tmp_path)
    assert any(p.name == "out.jsonl" for p in files) == output
    for path in files:
        assert leaks(path.read_bytes()) == [], f"{path.relative_to(tmp_path)}"


def test_a_run_with_failures_of_every_kind(
    tmp_path: Path, start_mock_server: StartMockServer
) -> None:
    faults = {"500": 0.1, "429": 0.15, "400": 0.05, "truncated_json": 0.05, "html": 0.05}
    url, _ = start_mock_server(api_key=CANARY_KEY, faults=faults, seed=7)
    write_input(tmp_path, 60)
    done = run(
        tmp_path,
        env_for(tmp_path, url),
        "--max-attempts",
        "3",
        "--max-requests-per-minute",
        "0",
        "--max-tokens-per-minute",
        "0",
    )
    assert done.returncode in (0, 1), done.stderr
    records = (tmp_path / "out.jsonl").read_bytes()
    assert b'"error"' in records and b'"ok"' in records, "both kinds of record were written"
    assert (tmp_path / "cache").exists(), "the cache was written too"
    assert_no_leak(tmp_path, done)


def test_a_rejected_key(tmp_path: Path, start_mock_server: StartMockServer) -> None:
    url, _ = start_mock_server(api_key="sk-the-key-the-server-wants")
    write_input(tmp_path, 5)
    done = run(tmp_path, env_for(tmp_path, url))
    assert done.returncode == 3, done.stderr
    assert b"401" in done.stderr or b"401" in (tmp_path / "out.jsonl").read_bytes()
    assert_no_leak(tmp_path, done)


def test_the_key_in_a_base_url_query(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there: every request fails with a connection error quoting the URL.
    base = f"http://127.0.0.1:{port}/v1?api-key={CANARY_KEY}"
    write_input(tmp_path, 3)
    done = run(tmp_path, env_for(tmp_path, base), "--max-attempts", "2")
    assert done.returncode in (1, 3), done.stderr
    assert_no_leak(tmp_path, done)


@pytest.mark.parametrize(
    ("userinfo", "where"),
    [
        (f"user:{CANARY_KEY}@", "env"),
        (f"{CANARY_KEY}@", "env"),
        (f"user:{CANARY_KEY}@", "job"),
        (f"user:{CANARY_KEY[:8]}@{CANARY_KEY[8:]}@", "job"),
    ],
)
def test_a_base_url_with_credentials_is_refused_before_anything_is_sent(
    tmp_path: Path, userinfo: str, where: str
) -> None:
    # Credentials in the URL as well as the key's header made every request fail, retried,
    # as "Cannot combine AUTHORIZATION header…": the run is refused up front instead.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        base = f"http://{userinfo}127.0.0.1:{port}/v1"
        write_input(tmp_path, 3)
        if where == "env":
            done = run(tmp_path, env_for(tmp_path, base))
            source = "$OPENAI_BASE_URL"
        else:
            (tmp_path / "job.toml").write_text(
                f'input = "in.jsonl"\noutput = "out.jsonl"\n'
                f'[[models]]\nname = "openai:gpt-4.1-mini"\nbase_url = "{base}"\n'
            )
            done = subprocess.run(
                [sys.executable, "-m", "lm_deluge_cli", "run", "job.toml", "-v"],
                cwd=tmp_path,
                env=env_for(tmp_path, "http://127.0.0.1:9/v1"),
                capture_output=True,
                timeout=120,
            )
            source = "its base_url"
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection was made: nothing was sent
    assert done.returncode == 2, done.stderr
    message = done.stderr.decode()
    assert "user name or password" in message and source in message
    assert f"127.0.0.1:{port}" in message and "OPENAI_API_KEY" in message
    assert_no_leak(tmp_path, done, output=False)


# Runs the CLI with an internal error raised right after the requester is built, from a
# frame whose locals hold the key as request headers do: shown locals would leak it.
CRASH = """
import os
import sys
from lm_deluge_cli import runner

build = runner.build_requester

async def build_then_fail(*args, **kwargs):
    requester = await build(*args, **kwargs)
    headers = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    raise RuntimeError("an internal error after building the requester")

runner.build_requester = build_then_fail
from lm_deluge_cli.cli.app import main
sys.argv = ["lm-deluge", *sys.argv[1:]]
main()
"""


def test_the_traceback_of_an_internal_error(
    tmp_path: Path, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server()
    write_input(tmp_path, 2)
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "openai:gpt-4.1-mini", "-v"]
    done = subprocess.run(
        [sys.executable, "-c", CRASH, *args],
        cwd=tmp_path,
        env=env_for(tmp_path, url, LM_DELUGE_HTTP_CLIENT="aiohttp"),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert b"an internal error after building the requester" in done.stderr
    assert b"build_then_fail" in done.stderr, "the traceback was printed"
    assert_no_leak(tmp_path, done, output=False)
