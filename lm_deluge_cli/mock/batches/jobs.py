"""One OpenAI batch in the mock, moving through OpenAI's states on a clock: validating →
in_progress → finalizing → completed (or failed, expired, cancelling → cancelled), its
lines answered as it goes and its output and error files written at the end."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from lm_deluge_cli.mock.batches.files import FileStore
from lm_deluge_cli.mock.batches.settings import BatchSettings
from lm_deluge_cli.mock.batches.validate import InputLine
from lm_deluge_cli.mock.formats.openai import error_body

__all__ = ["Job", "LineAnswer"]

# Shares of the processing time: the end of validating, the end of in_progress.
_VALIDATED, _PROCESSED = 0.1, 0.8
_COMPLETION_WINDOW_S = 24 * 3600
_TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})
_NOT_RUN = {
    "expired": (
        "batch_expired",
        "The request could not be executed before the completion window ended.",
    ),
    "cancelled": (
        "batch_cancelled",
        "The batch was cancelled before this request executed.",
    ),
}
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


class LineAnswer(NamedTuple):
    """What the online endpoint answered one line: status, request id, JSON body."""

    status: int
    request_id: str
    body: Any


# How a line is answered: (endpoint, request headers, body) → the online answer.
Answerer = Callable[[str, Mapping[str, str], bytes], LineAnswer]


@dataclass(slots=True)
class Job:
    """A batch and its progress. `advance` moves it to where the clock says it is."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    created: float
    headers: Mapping[str, str]
    lines: list[InputLine]
    errors: list[dict[str, Any]]
    status: str = "validating"
    times: dict[str, int | None] = field(default_factory=dict)
    cancel_from: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    done: int = 0  # lines answered so far (in input order)
    completed: int = 0
    failed: int = 0
    # input tokens, cached input tokens, output tokens, reasoning tokens of the answers
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    _output: list[bytes] = field(default_factory=list)
    _error: list[bytes] = field(default_factory=list)

    def _at(self, share: float, settings: BatchSettings) -> float:
        return self.created + share * settings.processing_s

    def advance(
        self,
        now: float,
        settings: BatchSettings,
        answer: Answerer,
        rng: random.Random,
        files: FileStore,
    ) -> None:
        """Move through every state the clock has passed, answering lines on the way."""
        if self.status == "validating" and now >= self._at(_VALIDATED, settings):
            stamp = int(self._at(_VALIDATED, settings))
            if self.errors:
                self.status, self.times["failed_at"] = "failed", stamp
                return
            self.status, self.times["in_progress_at"] = "in_progress", stamp
        if self.status == "cancelling":
            assert self.cancel_from is not None
            if now >= self.cancel_from + (1 - _PROCESSED) * settings.processing_s:
                self._finish("cancelled", now, files)
            return
        if self.status == "in_progress":
            self._answer_until(self._due(now, settings), settings, answer, rng)
            if now >= self._at(_PROCESSED, settings):
                self.status = "finalizing"
                self.times["finalizing_at"] = int(self._at(_PROCESSED, settings))
        if self.status == "finalizing" and now >= self._at(1.0, settings):
            self._answer_until(self._runnable(settings), settings, answer, rng)
            ending = "expired" if self.done < len(self.lines) else "completed"
            self._finish(ending, now, files)

    def cancel(
        self, now: float, settings: BatchSettings, answer: Answerer, rng: random.Random
    ) -> None:
        """Start cancelling: lines answered by now are kept, the rest will not run."""
        if self.status == "in_progress":
            self._answer_until(self._due(now, settings), settings, answer, rng)
        self.status, self.cancel_from = "cancelling", now
        self.times["cancelling_at"] = int(now)

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    def _runnable(self, settings: BatchSettings) -> int:
        """How many lines run before the window closes (the rest expire)."""
        return len(self.lines) - round(len(self.lines) * settings.expire_fraction)

    def _due(self, now: float, settings: BatchSettings) -> int:
        """How many lines should be answered by `now`, spread evenly over in_progress."""
        start, end = self._at(_VALIDATED, settings), self._at(_PROCESSED, settings)
        share = 1.0 if end <= start else min(1.0, max(0.0, (now - start) / (end - start)))
        return int(self._runnable(settings) * share)

    def _answer_until(
        self, count: int, settings: BatchSettings, answer: Answerer, rng: random.Random
    ) -> None:
        while self.done < count:
            line = self.lines[self.done]
            self.done += 1
            if settings.line_error_rate and rng.random() < settings.line_error_rate:
                got = LineAnswer(500, "req_" + secrets.token_hex(16), None)
            else:
                got = answer(self.endpoint, self.headers, orjson.dumps(line.body))
            body = got.body
            if got.status != 200 or body is None:
                if body is None:
                    body = orjson.loads(error_body(_SERVER_ERROR, "server_error"))
                response = {"status_code": got.status, "request_id": got.request_id, "body": body}
                self._error.append(_result(line.custom_id, response, None))
                self.failed += 1
            else:
                response = {"status_code": 200, "request_id": got.request_id, "body": body}
                for index, tokens in enumerate(_tokens(body)):
                    self.usage[index] += tokens
                self._output.append(_result(line.custom_id, response, None))
                self.completed += 1

    def _finish(self, status: str, now: float, files: FileStore) -> None:
        """End the batch: lines never run go to the error file, and both files are written."""
        code, message = _NOT_RUN.get(status, ("", ""))
        for line in self.lines[self.done :]:
            self._error.append(_result(line.custom_id, None, {"code": code, "message": message}))
            self.failed += 1
        self.done = len(self.lines)
        if self._output:
            name = f"batch_{self.id}_output.jsonl"
            self.output_file_id = files.add(name, "batch_output", b"".join(self._output)).id
        if self._error:
            name = f"batch_{self.id}_error.jsonl"
            self.error_file_id = files.add(name, "batch_output", b"".join(self._error)).id
        self._output, self._error = [], []
        self.status, self.times[f"{status}_at"] = status, int(now)

    def to_json(self) -> dict[str, Any]:
        """OpenAI's Batch object."""
        times = self.times
        errors = {"object": "list", "data": self.errors} if self.status == "failed" else None
        model = self.lines[0].body.get("model") if self.lines else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": model,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "in_progress_at": times.get("in_progress_at"),
            "expires_at": int(self.created) + _COMPLETION_WINDOW_S,
            "finalizing_at": times.get("finalizing_at"),
            "completed_at": times.get("completed_at"),
            "failed_at": times.get("failed_at"),
            "expired_at": times.get("expired_at"),
            "cancelling_at": times.get("cancelling_at"),
            "cancelled_at": times.get("cancelled_at"),
            "request_counts": {
                "total": 0 if self.errors else len(self.lines),
                "completed": self.completed,
                "failed": self.failed,
            },
            "usage": {
                "input_tokens": self.usage[0],
                "input_tokens_details": {"cached_tokens": self.usage[1]},
                "output_tokens": self.usage[2],
                "output_tokens_details": {"reasoning_tokens": self.usage[3]},
                "total_tokens": self.usage[0] + self.usage[2],
            },
            "metadata": self.metadata,
        }


def _tokens(body: Any) -> tuple[int, int, int, int]:
    """An answer's input, cached input, output and reasoning tokens, from the usage of Chat
    Completions and embeddings (``prompt_tokens``…) or of Responses (``input_tokens``…)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0, 0, 0
    chat = "prompt_tokens" in usage
    given = usage.get("prompt_tokens_details" if chat else "input_tokens_details") or {}
    made = usage.get("completion_tokens_details" if chat else "output_tokens_details") or {}
    return (
        int(usage.get("prompt_tokens" if chat else "input_tokens") or 0),
        int(given.get("cached_tokens") or 0),
        int(usage.get("completion_tokens" if chat else "output_tokens") or 0),
        int(made.get("reasoning_tokens") or 0),
    )


def _result(custom_id: str, response: dict[str, Any] | None, error: dict[str, str] | None) -> bytes:
    """One line of an output or error file."""
    line = {
        "id": "batch_req_" + secrets.token_hex(16),
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return orjson.dumps(line) + b"\n"
