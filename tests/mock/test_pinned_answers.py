"""The exact answers to plain chat requests, in every wire format: status, headers, body
bytes and the tokens counted, pinned in `pinned_answers.json`.

They pin what the simulator says, so a change made for speed can be shown to change
nothing. Ids and timestamps are fixed by patching the simulator's nonce and the clock. After
a change that is meant to alter an answer, rewrite the file and review its diff:
``python -m tests.mock.test_pinned_answers``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.mock.chats import PROVIDERS, make, request, send

PINNED = Path(__file__).with_name("pinned_answers.json")
PROMPT = "Prompt number 0: say something."
NONCE = "0123456789abcdef"
NOW = 1_750_000_000.0


def cases() -> dict[str, tuple[str, dict[str, Any]]]:
    """Name → (provider, body): plain requests, as most lines of a batch are."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for provider in PROVIDERS:
        found[f"{provider}/plain"] = (provider, request(provider, PROMPT))
        found[f"{provider}/system"] = (provider, request(provider, PROMPT, system="Be brief."))
        found[f"{provider}/yes_no"] = (provider, request(provider, "Is it blue? Yes or no."))
        found[f"{provider}/cut"] = (provider, request(provider, PROMPT, max_tokens=16))
    # What the engine sends for mock:fast (lm_deluge_cli/providers/openai_chat.py).
    engine = {
        "model": "fast",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_completion_tokens": 512,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    found["openai/engine"] = ("openai", engine)
    found["openai/samples"] = ("openai", {**request("openai", PROMPT), "n": 3})
    return found


def answered(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """What a fresh simulator answers to `body`, with the tokens it counted."""
    sim = make()
    response, _ = send(sim, provider, body)
    stats = sim.statistics()
    return {
        "status": response.status,
        "headers": response.headers,
        "body": response.body.decode(),
        "tokens_in": stats.tokens_in,
        "tokens_out": stats.tokens_out,
    }


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(secrets, "token_hex", lambda _n=None: NONCE)
    monkeypatch.setattr(time, "time", lambda: NOW)
    yield


@pytest.mark.parametrize("name", sorted(cases()))
def test_the_answer_is_the_pinned_one(name: str) -> None:
    pinned = orjson.loads(PINNED.read_bytes())
    provider, body = cases()[name]
    assert answered(provider, body) == pinned[name]


def test_every_case_is_pinned() -> None:
    assert sorted(orjson.loads(PINNED.read_bytes())) == sorted(cases())


if __name__ == "__main__":
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(secrets, "token_hex", lambda _n=None: NONCE)
        patch.setattr(time, "time", lambda: NOW)
        every = {name: answered(*case) for name, case in sorted(cases().items())}
    PINNED.write_bytes(orjson.dumps(every, option=orjson.OPT_INDENT_2) + b"\n")
