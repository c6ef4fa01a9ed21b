"""The parts a message is made of: text, images, files, tool calls and tool results."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lm_deluge_cli.images import Image, read_media, sniff_file_type

__all__ = [
    "CacheControl",
    "ConversionError",
    "File",
    "Image",
    "MarkablePart",
    "Part",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolResult",
    "with_cache_control",
]

# A prompt-cache breakpoint as Anthropic spells it ({"type": "ephemeral", "ttl"?: "5m" | "1h"}),
# carried by a part to its OpenAI-shaped part and on to the Anthropic block it becomes.
CacheControl = Mapping[str, Any]

# The name of a PDF that came without one (OpenAI's file parts require a filename).
DEFAULT_FILENAME = "document.pdf"


class ConversionError(ValueError):
    """A message or part that cannot be converted; `path` locates it, e.g. ``[2].content[0]``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"messages{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Text:
    """A text part, with the prompt-cache breakpoint it carries, if any."""

    text: str
    cache_control: CacheControl | None = field(default=None, hash=False)

    def openai_part(self) -> dict[str, Any]:
        """The OpenAI chat ``text`` content part."""
        return with_cache_control({"type": "text", "text": self.text}, self.cache_control)


@dataclass(frozen=True, slots=True)
class File:
    """A file part (usually a PDF): its bytes, or the id of a file uploaded to OpenAI."""

    data: bytes | None
    media_type: str = "application/pdf"
    filename: str = DEFAULT_FILENAME
    file_id: str | None = None
    cache_control: CacheControl | None = field(default=None, hash=False)

    @classmethod
    def load(
        cls,
        source: Any,
        *,
        media_type: str | None = None,
        filename: str | None = None,
        base_dir: str | Path | None = None,
    ) -> File:
        """A file from a path, ``file:`` URL, bytes, file object, base64 or data URL (read now).

        The media type is `media_type`, else the data URL's, else sniffed (PDFs by their
        magic number), else guessed from the file name.
        """
        if isinstance(source, File):
            return source
        read = read_media(source, "file", base_dir)
        # read_media names in-memory sources "<file bytes>" and the like: not a file name.
        known = filename or (None if read.name.startswith("<") else read.name)
        kind = media_type or read.media_type or sniff_file_type(read.data, known or "")
        name = known or _default_filename(kind)
        return cls(data=read.data, media_type=kind, filename=name)

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes sent (or of the file id)."""
        payload = self.data if self.data is not None else str(self.file_id).encode()
        return hashlib.sha256(payload).hexdigest()

    def openai_part(self) -> dict[str, Any]:
        """The OpenAI chat ``file`` content part, its bytes as a base64 data URL."""
        if self.data is None:
            spec = {"file_id": self.file_id}
        else:
            encoded = base64.b64encode(self.data).decode("ascii")
            data_url = f"data:{self.media_type};base64,{encoded}"
            spec = {"filename": self.filename, "file_data": data_url}
        return with_cache_control({"type": "file", "file": spec}, self.cache_control)


def _default_filename(media_type: str) -> str:
    if media_type == "application/pdf":
        return DEFAULT_FILENAME
    return "file" + (mimetypes.guess_extension(media_type) or ".bin")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the assistant made to a tool; `arguments` is the decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    cache_control: CacheControl | None = field(default=None, hash=False)

    def openai_call(self) -> dict[str, Any]:
        """The entry of an OpenAI assistant message's ``tool_calls``."""
        arguments = orjson.dumps(self.arguments).decode()
        function = {"name": self.name, "arguments": arguments}
        call = {"id": self.id, "type": "function", "function": function}
        return with_cache_control(call, self.cache_control)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned for one call, as text (and the prompt-cache breakpoint on it)."""

    tool_call_id: str
    content: str
    cache_control: CacheControl | None = field(default=None, hash=False)

    @classmethod
    def of(cls, tool_call_id: str, result: Any) -> ToolResult:
        """A result from any JSON value: strings are kept, anything else is sent as JSON."""
        text = result if isinstance(result, str) else orjson.dumps(result).decode()
        return cls(tool_call_id, text)

    def openai_message(self) -> dict[str, Any]:
        """The OpenAI ``tool`` message carrying this result."""
        message = {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        return with_cache_control(message, self.cache_control)


@dataclass(frozen=True, slots=True)
class Thinking:
    """What the model said while thinking, on an assistant turn: its text and the opaque
    parts its provider needs back to continue (`results.Reasoning`), sent to that provider's
    format only."""

    text: str | None
    parts: tuple[Mapping[str, Any], ...] = ()

    def openai_field(self) -> dict[str, Any]:
        """The ``reasoning`` field of an OpenAI-shaped assistant message."""
        return {"text": self.text, "parts": [dict(part) for part in self.parts]}


# The parts that can carry a prompt-cache breakpoint, and every part.
MarkablePart = Text | Image | File | ToolCall | ToolResult
Part = MarkablePart | Thinking


def with_cache_control(part: dict[str, Any], control: CacheControl | None) -> dict[str, Any]:
    """An OpenAI-shaped part (or tool message) with the breakpoint `control`, if there is one."""
    return part if control is None else {**part, "cache_control": dict(control)}
