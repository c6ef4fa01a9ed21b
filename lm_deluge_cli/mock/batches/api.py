"""The routes of OpenAI's Files and Batches APIs in the mock, shared by the loopback
server and the in-process transport: each request becomes an answer, and each batch line
is answered by the same simulator and wire format as the online request would be."""

from __future__ import annotations

import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from lm_deluge_cli.mock.batches.files import FileStore, MultipartError, parse_multipart
from lm_deluge_cli.mock.batches.jobs import Job, LineAnswer
from lm_deluge_cli.mock.batches.settings import BatchSettings
from lm_deluge_cli.mock.batches.validate import validate_input
from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.formats.openai import error_body
from lm_deluge_cli.mock.simulator import SimResponse, Simulator

__all__ = ["BatchAnswer", "BatchStats", "MockBatches"]

_JSON = {"content-type": "application/json"}
_FILES = re.compile(r"(?:/openai)?(?:/v1)?/files(?:/(?P<id>[^/]+)(?P<content>/content)?)?")
_BATCHES = re.compile(r"(?:/openai)?(?:/v1)?/batches(?:/(?P<id>[^/]+)(?P<cancel>/cancel)?)?")
ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")
_METADATA_KEYS, _METADATA_KEY_CHARS, _METADATA_VALUE_CHARS = 16, 64, 512


# An answer to a Files or Batches request: the simulator's kind, always "respond".
BatchAnswer = SimResponse


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What the batch side has received: later tests prove no line was submitted twice."""

    files_uploaded: int = 0
    batches_created: int = 0
    batch_lines_submitted: int = 0


def _json(status: int, payload: Any) -> BatchAnswer:
    return BatchAnswer(status, dict(_JSON), orjson.dumps(payload))


def _invalid(status: int, message: str, param: str | None = None) -> BatchAnswer:
    return BatchAnswer(
        status, dict(_JSON), error_body(message, "invalid_request_error", None, param)
    )


class MockBatches:
    """OpenAI's Files and Batches APIs over one simulator, on an injectable wall clock."""

    def __init__(
        self,
        simulator: Simulator,
        settings: BatchSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.simulator = simulator
        self.settings = settings if settings is not None else BatchSettings()
        self._clock = clock
        self._rng = random.Random(self.settings.seed)
        self.files = FileStore(clock)
        self._jobs: dict[str, Job] = {}
        self._counts = dict.fromkeys(BatchStats.__dataclass_fields__, 0)
        # How many of each fault are still to come.
        faults = self.settings.faults
        self._faults = {
            "upload": faults.refuse_uploads,
            "poll": faults.poll_errors,
            "cut": faults.cut_downloads,
        }

    def statistics(self) -> BatchStats:
        """A frozen snapshot of the counters."""
        return BatchStats(**self._counts)

    def reset_statistics(self) -> None:
        self._counts = dict.fromkeys(self._counts, 0)

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None = None,
    ) -> BatchAnswer | None:
        """The answer to a Files or Batches request (header names lower-case), or None when
        the path is neither."""
        files, batches = _FILES.fullmatch(path), _BATCHES.fullmatch(path)
        if files is None and batches is None:
            return None
        key = self.simulator.settings.api_key
        if key is not None and headers.get("authorization") != f"Bearer {key}":
            message = "Incorrect API key provided."
            return BatchAnswer(
                401, dict(_JSON), error_body(message, "invalid_request_error", "invalid_api_key")
            )
        if files is not None:
            answer = self._files(method, files["id"], bool(files["content"]), headers, body)
        else:
            assert batches is not None
            answer = self._batches(
                method, batches["id"], bool(batches["cancel"]), headers, body, query or {}
            )
        if answer is None:
            return _invalid(405, f"Method {method} not allowed on {path}.")
        return answer

    def _fault(self, name: str) -> bool:
        if self._faults[name] > 0:
            self._faults[name] -= 1
            return True
        return False

    # Files

    def _files(
        self,
        method: str,
        file_id: str | None,
        content: bool,
        headers: Mapping[str, str],
        body: bytes,
    ) -> BatchAnswer | None:
        if file_id is None:
            return self._upload(headers, body) if method == "POST" else None
        stored = self.files.get(file_id)
        if stored is None:
            return _invalid(404, f"No such File object: {file_id}", "id")
        if content and method == "GET":
            data = stored.content
            if stored.purpose == "batch_output" and self._fault("cut"):
                data = _cut_mid_line(data)
            return BatchAnswer(200, {"content-type": "application/octet-stream"}, data)
        if content:
            return None
        if method == "GET":
            return _json(200, stored.to_json())
        if method == "DELETE":
            self.files.delete(file_id)
            return _json(200, {"id": file_id, "object": "file", "deleted": True})
        return None

    def _upload(self, headers: Mapping[str, str], body: bytes) -> BatchAnswer:
        if self._fault("upload"):
            status = self.settings.faults.upload_status
            if status >= 500:
                message = "The server had an error while processing your request."
                return BatchAnswer(status, dict(_JSON), error_body(message, "server_error"))
            return _invalid(status, "The upload was refused.", "file")
        try:
            fields, upload = parse_multipart(headers.get("content-type", ""), body)
        except MultipartError as exc:
            return _invalid(400, str(exc))
        purpose = fields.get("purpose")
        if purpose is None:
            return _invalid(400, "Missing required parameter: 'purpose'.", "purpose")
        if purpose == "batch":
            if len(upload.content) > self.settings.max_file_bytes:
                limit = self.settings.max_file_bytes
                return _invalid(
                    400,
                    f"File is too large: a batch input file may be at most {limit} bytes.",
                    "file",
                )
            if not upload.filename.endswith(".jsonl"):
                return _invalid(400, "A batch input file must be a .jsonl file.", "file")
        stored = self.files.add(upload.filename, purpose, upload.content)
        self._counts["files_uploaded"] += 1
        return _json(200, stored.to_json())

    # Batches

    def _batches(
        self,
        method: str,
        batch_id: str | None,
        cancel: bool,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str],
    ) -> BatchAnswer | None:
        if batch_id is None:
            if method == "POST":
                return self._create(headers, body)
            return self._list(query) if method == "GET" else None
        job = self._jobs.get(batch_id)
        if job is None:
            return _invalid(404, f"No batch found with id '{batch_id}'.", "id")
        if cancel:
            return self._cancel(job) if method == "POST" else None
        if method != "GET":
            return None
        if self._fault("poll"):
            message = "The server had an error while processing your request."
            return BatchAnswer(500, dict(_JSON), error_body(message, "server_error"))
        self._advance(job)
        return _json(200, job.to_json())

    def _create(self, headers: Mapping[str, str], body: bytes) -> BatchAnswer:
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _invalid(400, "The request body is not valid JSON.")
        if not isinstance(params, dict):
            return _invalid(400, "The request body must be a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in params:
                return _invalid(400, f"Missing required parameter: '{name}'.", name)
        endpoint, window = params["endpoint"], params["completion_window"]
        if endpoint not in ENDPOINTS:
            return _invalid(
                400,
                f"Invalid endpoint {endpoint!r}; supported: {', '.join(ENDPOINTS)}.",
                "endpoint",
            )
        if window != "24h":
            return _invalid(
                400, "Invalid completion_window: only '24h' is supported.", "completion_window"
            )
        metadata = params.get("metadata")
        problem = _check_metadata(metadata)
        if problem is not None:
            return _invalid(400, problem, "metadata")
        stored = self.files.get(str(params["input_file_id"]))
        if stored is None:
            return _invalid(404, f"No such File object: {params['input_file_id']}", "input_file_id")
        if stored.purpose != "batch":
            return _invalid(
                400, "The input file must be uploaded with purpose 'batch'.", "input_file_id"
            )
        lines, errors = validate_input(stored.content, endpoint, self.settings)
        job = Job(
            "batch_" + secrets.token_hex(12),
            endpoint,
            stored.id,
            window,
            metadata,
            self._clock(),
            dict(headers),
            lines,
            errors,
        )
        self._jobs[job.id] = job
        self._counts["batches_created"] += 1
        if not errors:
            self._counts["batch_lines_submitted"] += len(lines)
        return _json(200, job.to_json())

    def _list(self, query: Mapping[str, str]) -> BatchAnswer:
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _invalid(400, "limit must be an integer from 1 to 100.", "limit")
        newest_first = list(reversed(self._jobs.values()))
        after = query.get("after")
        if after is not None:
            ids = [job.id for job in newest_first]
            start = ids.index(after) + 1 if after in ids else len(ids)
            newest_first = newest_first[start:]
        page = newest_first[:limit]
        for job in page:
            self._advance(job)
        return _json(
            200,
            {
                "object": "list",
                "data": [job.to_json() for job in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(newest_first) > limit,
            },
        )

    def _cancel(self, job: Job) -> BatchAnswer:
        self._advance(job)
        if job.terminal or job.status == "cancelling":
            return _invalid(409, f"Cannot cancel a batch with status '{job.status}'.")
        job.cancel(self._clock(), self.settings, self._answer, self._rng)
        return _json(200, job.to_json())

    def _advance(self, job: Job) -> None:
        job.advance(self._clock(), self.settings, self._answer, self._rng, self.files)

    def _answer(self, endpoint: str, headers: Mapping[str, str], body: bytes) -> LineAnswer:
        """The online answer to one line: the simulator on the endpoint's route."""
        route = match_route(endpoint)
        assert route is not None
        sim = self.simulator.handle(route, headers, body)
        request_id = sim.headers.get("x-request-id", "req_" + secrets.token_hex(16))
        if sim.action != "respond":
            return LineAnswer(500, request_id, None)
        try:
            payload = orjson.loads(sim.body)
        except orjson.JSONDecodeError:
            return LineAnswer(500, request_id, None)
        return LineAnswer(sim.status, request_id, payload)


def _check_metadata(metadata: Any) -> str | None:
    """Why `metadata` breaks OpenAI's rules (16 string pairs, keys ≤ 64, values ≤ 512)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > _METADATA_KEYS:
        return f"metadata must be an object of at most {_METADATA_KEYS} key-value pairs."
    for key, value in metadata.items():
        if (
            not isinstance(value, str)
            or len(key) > _METADATA_KEY_CHARS
            or len(value) > _METADATA_VALUE_CHARS
        ):
            return (
                f"metadata keys are strings of at most {_METADATA_KEY_CHARS} characters and "
                f"values strings of at most {_METADATA_VALUE_CHARS}."
            )
    return None


def _cut_mid_line(data: bytes) -> bytes:
    """The file cut short inside a line (never at a line's end)."""
    cut = max(1, len(data) // 2)
    if data[cut - 1 : cut] == b"\n":
        cut -= 1
    return data[:cut]
