"""HTTP/1.1 framing for the mock server: request heads, chunked bodies, encoded answers.

Only what a loopback test server needs; anything else is refused with `BadRequest`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import NamedTuple

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "BadRequest",
    "Head",
    "dechunk",
    "encode",
    "parse_head",
]

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

# Reason phrases that differ from (or are missing in) the standard library's.
_REASONS = {
    413: "Content Too Large",
    422: "Unprocessable Content",
    529: "Site Overloaded",
}


class BadRequest(Exception):
    """The bytes on a connection are not HTTP we can serve: answer once, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Head(NamedTuple):
    """A parsed request line and headers (lower-case names); the path without its query."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    keep_alive: bool
    length: int  # -1 for a chunked body
    expect_continue: bool


def parse_head(raw: bytes) -> Head:
    """The head of a request (the bytes before the blank line); raises `BadRequest`."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "Malformed HTTP request line.")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "Malformed HTTP header line.")
        headers[name.lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version != "HTTP/1.0" else "keep-alive" in connection
    if "transfer-encoding" in headers:
        # Transfer-Encoding overrides Content-Length when both are sent (RFC 9112 §6.3).
        if headers["transfer-encoding"].lower() != "chunked":
            raise BadRequest(501, "Only the chunked transfer encoding is supported.")
        length = -1
    else:
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            raise BadRequest(400, "Invalid Content-Length header.")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, "Request body too large.")
    expect = headers.get("expect", "").lower() == "100-continue"
    path, _, query = target.partition("?")
    return Head(method, path, query, headers, keep_alive, length, expect)


def dechunk(buffer: bytearray) -> tuple[bytes, int] | None:
    """A complete chunked body at the start of `buffer` and the bytes it spans, or None."""
    parts: list[bytes] = []
    pos = 0
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buffer[pos:eol]).partition(b";")[0], 16)
        except ValueError:
            raise BadRequest(400, "Malformed chunk size.") from None
        pos = eol + 2
        if size == 0:
            if len(buffer) < pos + 2:
                return None
            if buffer[pos : pos + 2] == b"\r\n":
                return b"".join(parts), pos + 2
            end = buffer.find(b"\r\n\r\n", pos)  # trailers, which we ignore
            return None if end < 0 else (b"".join(parts), end + 4)
        if len(buffer) < pos + size + 2:
            return None
        if buffer[pos + size : pos + size + 2] != b"\r\n":
            raise BadRequest(400, "Malformed chunk.")
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


def encode(status: int, headers: dict[str, str], body: bytes, keep_alive: bool) -> bytes:
    """A whole HTTP/1.1 response, with its content-length (and ``connection: close``)."""
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.append(f"content-length: {len(body)}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _reason(status: int) -> str:
    if status in _REASONS:
        return _REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
