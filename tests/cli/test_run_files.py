"""`lm-deluge run` with local files in the input lines: a PDF and a text file, read relative
to the input file, reach the loopback mock as Anthropic document blocks and Gemini inlineData."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.mock.wire import (
    FILE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    count_text_tokens,
)
from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n%%EOF\n"
)
NOTES = "Quarterly notes: revenue up, costs flat.\n"
QUESTION = "Summarize it."


def line(prompt_id: str, path: str) -> str:
    part = {"type": "file", "path": path}
    content = [part, {"type": "text", "text": QUESTION}]
    return json.dumps({"id": prompt_id, "messages": [{"role": "user", "content": content}]})


@pytest.mark.parametrize(
    ("model", "key_env", "base_url_env", "prefix"),
    [
        (
            "anthropic:claude-haiku-4-5-20251001",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "anthropic",
        ),
        ("gemini:gemini-2.5-flash", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "gemini"),
    ],
)
def test_local_files_in_input_lines_reach_the_provider(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
    model: str,
    key_env: str,
    base_url_env: str,
    prefix: str,
) -> None:
    url, _ = start_mock_server(api_key=KEY)
    root = url.removesuffix("/v1")
    # The files sit beside the input, not in the working directory the run starts in.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "doc.pdf").write_bytes(PDF)
    (docs / "notes.txt").write_text(NOTES)
    (docs / "in.jsonl").write_text(f"{line('pdf', 'doc.pdf')}\n{line('txt', 'notes.txt')}\n")
    result = run_cli(
        "run",
        "-m",
        model,
        "-i",
        "docs/in.jsonl",
        "-o",
        "out.jsonl",
        env=cli_env(**{key_env: KEY, base_url_env: f"{root}/{prefix}"}),
    )
    assert result.returncode == 0, result.stderr.decode()
    records: dict[str, dict[str, Any]] = {
        r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())
    }
    assert {r["status"] for r in records.values()} == {"ok"}, records
    # The mock counts a PDF flat and a text file by its text: each file arrived as a file.
    asked = count_text_tokens(QUESTION) + MESSAGE_OVERHEAD_TOKENS
    assert records["pdf"]["usage"]["input_tokens"] == FILE_TOKENS + asked
    assert records["txt"]["usage"]["input_tokens"] == count_text_tokens(NOTES) + asked
