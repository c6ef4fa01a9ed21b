"""Keys go only to the host the model entry names: a redirect elsewhere is not followed, and
the record says where the provider tried to send the request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.runner import run_job
from tests.conftest import CANARY_KEY


@dataclass
class Seen:
    """What a loopback server received: each request's path and headers."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def serve(status: int, location: str | None, seen: Seen) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            seen.requests.append((self.path, dict(self.headers.items())))
            self.send_response(status)
            if location is not None:
                self.send_header("location", location)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, Seen]]:
    """Another host (``localhost``, another port) that would answer anything it is sent."""
    seen = Seen()
    server = serve(200, None, seen)
    yield f"http://localhost:{server.server_address[1]}/v1/chat/completions", seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_never_carries_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    elsewhere: tuple[str, Seen],
    client: str,
    status: int,
) -> None:
    target, target_seen = elsewhere
    seen = Seen()
    server = serve(status, target, seen)
    try:
        monkeypatch.setenv("LM_DELUGE_HTTP_CLIENT", client)
        monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
        monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
        source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        source.write_text('{"id": "a", "prompt": "hi"}\n')
        job = load_job(
            None,
            JobOverrides(
                input=str(source),
                output=str(output),
                models=["openai:gpt-4.1-mini"],
                max_attempts=2,
                no_cache=True,
            ),
        )
        report = anyio.run(run_job, job)
    finally:
        server.shutdown()
        server.server_close()

    assert seen.requests, "the named host was asked"
    assert target_seen.requests == [], "nothing, key or not, went to the other host"
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["status"] == "error"
    message = record["error"]["message"]
    assert target in message
    assert "redirect" in message
    assert record["error"]["status_code"] == status
    assert report.exit_code == 1
