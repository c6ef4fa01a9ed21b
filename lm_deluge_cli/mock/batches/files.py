"""OpenAI's Files API in the mock: uploads (multipart/form-data), the File object, its
content and its deletion; batches read their input from here and write their results."""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FileStore", "MultipartError", "StoredFile", "StoredPart", "parse_multipart"]

# Files uploaded for a batch expire after 30 days unless told otherwise (OpenAI's default).
_BATCH_FILE_TTL_S = 30 * 24 * 3600


class MultipartError(ValueError):
    """An upload whose body is not the multipart form OpenAI expects."""


@dataclass(slots=True)
class StoredFile:
    """One file: its File object fields and its bytes."""

    id: str
    filename: str
    purpose: str
    created_at: int
    content: bytes

    def to_json(self) -> dict[str, Any]:
        """OpenAI's File object."""
        expires = self.created_at + _BATCH_FILE_TTL_S if self.purpose == "batch" else None
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "expires_at": expires,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class FileStore:
    """The files one mock provider holds, by id."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(
            "file-" + secrets.token_hex(12), filename, purpose, int(self._clock()), content
        )
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def delete(self, file_id: str) -> bool:
        return self._files.pop(file_id, None) is not None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], StoredPart]:
    """The form's text fields and its ``file`` part from a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise MultipartError("Expected a multipart/form-data body.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise MultipartError("The multipart body could not be parsed.")
    fields: dict[str, str] = {}
    upload: StoredPart | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        filename = part.get_filename()
        if name == "file":
            upload = StoredPart(filename or "upload", payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if upload is None:
        raise MultipartError("The 'file' field is required.")
    return fields, upload


@dataclass(frozen=True, slots=True)
class StoredPart:
    """The uploaded file of a multipart form: its name and bytes."""

    filename: str
    content: bytes
