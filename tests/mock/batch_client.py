"""Helpers for the mock's OpenAI Files and Batches tests: input files, multipart uploads,
and a client that talks to a `MockBatches` directly on a clock the test moves."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from lm_deluge_cli.mock.batches import BatchAnswer, BatchSettings, MockBatches
from lm_deluge_cli.mock.simulator import MockSettings, Simulator

__all__ = ["Direct", "chat_line", "jsonl", "multipart", "stable"]

MODEL = "gpt-4o-mini"


def chat_line(custom_id: str, text: str = "Hello", model: str = MODEL) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def multipart(content: bytes, purpose: str = "batch", name: str = "in.jsonl") -> tuple[str, bytes]:
    """The content type and body of an upload, as httpx (and so the OpenAI SDK) builds it."""
    request = httpx.Request(
        "POST", "http://mock/v1/files", data={"purpose": purpose}, files={"file": (name, content)}
    )
    return request.headers["content-type"], request.read()


def stable(value: Any) -> Any:
    """An answer without the fields that name one request (ids and times)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in ("id", "created", "created_at")}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


class Direct:
    """A client of a `MockBatches` with no transport, on a clock the test moves (`now`)."""

    def __init__(self, settings: BatchSettings | None = None, **mock: Any) -> None:
        self.now = 1_800_000_000.0  # the wall clock, moved by the test
        self.batches = MockBatches(Simulator(MockSettings(**mock)), settings, lambda: self.now)

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> BatchAnswer:
        answer = self.batches.handle(method, path, headers or {}, body, query)
        assert answer is not None
        return answer

    def json(self, method: str, path: str, payload: Any = None, **query: str) -> tuple[int, Any]:
        body = b"" if payload is None else orjson.dumps(payload)
        answer = self.call(method, path, body, query=query or None)
        return answer.status, orjson.loads(answer.body)

    def upload(self, content: bytes, purpose: str = "batch", name: str = "in.jsonl") -> Any:
        content_type, body = multipart(content, purpose, name)
        answer = self.call("POST", "/v1/files", body, {"content-type": content_type})
        return answer.status, orjson.loads(answer.body)

    def create(
        self, lines: list[dict[str, Any]], endpoint: str = "/v1/chat/completions", **extra: Any
    ) -> dict[str, Any]:
        status, uploaded = self.upload(jsonl(lines))
        assert status == 200, uploaded
        params = {"input_file_id": uploaded["id"], "endpoint": endpoint, "completion_window": "24h"}
        status, batch = self.json("POST", "/v1/batches", {**params, **extra})
        assert status == 200, batch
        return dict(batch)

    def get(self, batch_id: str) -> dict[str, Any]:
        status, batch = self.json("GET", f"/v1/batches/{batch_id}")
        assert status == 200, batch
        return dict(batch)

    def lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        answer = self.call("GET", f"/v1/files/{file_id}/content")
        assert answer.status == 200
        return [orjson.loads(line) for line in answer.body.splitlines()]
