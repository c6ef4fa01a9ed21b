"""Token estimates for rate limiting: tiktoken when its encoding is available, else a heuristic.

tiktoken downloads its encoding files on first use. Offline (and until they are
cached) we fall back to ceil(UTF-8 bytes / 4) per text, which overestimates
English slightly; that only makes pacing a little conservative, and the usage the
provider reports replaces the estimate after each response. One warning is
logged. Set ``LM_DELUGE_TOKENIZER=heuristic`` to skip tiktoken entirely.

Images in data URLs are counted by the provider's own rule from their pixel size (see
`lm_deluge_cli.images.image_tokens`); PDFs by a per-page rule of thumb (`PDF_PAGE_TOKENS`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lm_deluge_cli.images import data_url_image_size, image_tokens, provider_family

__all__ = [
    "PDF_PAGE_TOKENS",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "message_tokens_at_most",
    "pdf_pages",
]

log = logging.getLogger(__name__)

# Per-message framing tokens in the chat format, as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3
# A flat allowance for a part whose size cannot be read here (an image by URL, a binary file):
# what OpenAI charges a 1024×1024 image at high detail.
NON_TEXT_PART_TOKENS = 765
# Tokens per PDF page. OpenAI and Anthropic read each page as its text plus an image of it;
# Anthropic puts the text alone at 1,500-3,000 tokens a page (docs.anthropic.com/en/docs/
# build-with-claude/pdf-support, "Estimate your costs"), so a page counts at the top of that
# range. Gemini bills a page as an image: 258 tokens on Gemini 2.x, 560 at Gemini 3's default
# media resolution for PDFs (ai.google.dev/gemini-api/docs/media-resolution); the larger is used.
PDF_PAGE_TOKENS: Mapping[str, int] = {"openai": 3000, "anthropic": 3000, "gemini": 560}
# When no page object can be found (they may sit in compressed object streams), the size
# stands in for the page count.
PDF_BYTES_PER_PAGE = 100_000
TIKTOKEN_ENCODING = "o200k_base"
# Longer texts are estimated by the heuristic: tiktoken takes seconds over tens of MB, on
# the event loop, where it would hold up every request and a stop; at this size the
# heuristic's few percent are what the provider's reported usage corrects anyway.
TIKTOKEN_MAX_CHARS = 1_000_000
TIKTOKEN_LOAD_TIMEOUT_S = 5.0

_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_COUNT = re.compile(rb"/Count\s+(\d+)")

_encoder: Callable[[str], int] | None = None
_resolved = False
_lock = threading.Lock()


def _heuristic(text: str) -> int:
    return (len(text.encode("utf-8")) + 3) // 4


def _load_encoder() -> Callable[[str], int]:
    """tiktoken's counter, or the heuristic (with one warning) when it cannot load."""
    if os.environ.get("LM_DELUGE_TOKENIZER") == "heuristic":
        return _heuristic
    result: list[Callable[[str], int]] = []
    failure: list[BaseException] = []

    def load() -> None:
        try:
            import tiktoken

            encoding = tiktoken.get_encoding(TIKTOKEN_ENCODING)
            result.append(lambda text: len(encoding.encode(text, disallowed_special=())))
        except Exception as exc:  # any failure means: use the fallback
            failure.append(exc)

    # A download attempt can hang on a filtering network; never wait long for it.
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(TIKTOKEN_LOAD_TIMEOUT_S)
    if result:
        return result[0]
    reason = type(failure[0]).__name__ if failure else "timed out"
    log.warning(
        "tiktoken's %s encoding is not available (%s); estimating tokens as UTF-8 bytes / 4. "
        "Set LM_DELUGE_TOKENIZER=heuristic to skip this check.",
        TIKTOKEN_ENCODING,
        reason,
    )
    return _heuristic


def _counter() -> Callable[[str], int]:
    global _encoder, _resolved
    if not _resolved:
        with _lock:
            if not _resolved:
                _encoder = _load_encoder()
                _resolved = True
    assert _encoder is not None
    return _encoder


def estimate_text_tokens(text: str) -> int:
    """Tokens in one text."""
    return _bounded(_counter())(text)


def _bounded(count: Callable[[str], int]) -> Callable[[str], int]:
    """`count`, but the heuristic for a text over TIKTOKEN_MAX_CHARS."""
    if count is _heuristic:
        return count
    return lambda text: _heuristic(text) if len(text) > TIKTOKEN_MAX_CHARS else count(text)


def estimate_message_tokens(messages: Iterable[dict[str, Any]], *, provider: str = "openai") -> int:
    """Input tokens of a chat message list, framing included.

    `provider` ("openai", "anthropic", "gemini", or a wire-format name) picks the rule for
    images and PDFs; text is counted the same way for every provider.
    """
    count = _bounded(_counter())
    family = provider_family(provider)
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        if isinstance(content, str):
            total += count(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += count(part["text"])
                else:
                    total += _media_tokens(part, family, count)
        for key in ("name", "tool_calls"):
            if key in message:
                total += count(str(message[key]))
    return total


def message_tokens_at_most(messages: Iterable[dict[str, Any]]) -> int | None:
    """A bound `estimate_message_tokens` never exceeds, found without counting: four per
    character (a token is at least one UTF-8 byte, a character at most four; the fallback
    counts a quarter per byte). None when a part is not text (an image, a file)."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        if isinstance(content, str):
            total += 4 * len(content)
        elif isinstance(content, list):
            for part in content:
                if not (isinstance(part, dict) and isinstance(part.get("text"), str)):
                    return None
                total += 4 * len(part["text"])
        for key in ("name", "tool_calls"):
            if key in message:
                total += 4 * len(str(message[key]))
    return total


def _media_tokens(part: Any, family: str, count: Callable[[str], int]) -> int:
    """Tokens of an image or file part; the flat allowance when its size cannot be read."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image_url":
        value = part.get("image_url")
        url = value.get("url") if isinstance(value, dict) else value
        detail = value.get("detail") if isinstance(value, dict) else None
        size = data_url_image_size(url) if isinstance(url, str) else None
        if size is not None:
            return image_tokens(*size, family, detail if isinstance(detail, str) else None)
    elif kind == "file" and isinstance(part.get("file"), dict):
        decoded = _data_url_bytes(part["file"].get("file_data"))
        if decoded is not None:
            media_type, data = decoded
            if media_type == "application/pdf":
                return pdf_pages(data) * PDF_PAGE_TOKENS[family]
            if media_type.startswith("text/"):
                return count(data.decode("utf-8", "replace"))
    return NON_TEXT_PART_TOKENS


def _data_url_bytes(url: Any) -> tuple[str, bytes] | None:
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    try:
        return header.split(";")[0].lower(), base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return None


def pdf_pages(data: bytes) -> int:
    """The page count of a PDF, read from its bytes without a PDF library; at least 1.

    Counts page objects and the page tree's ``/Count``; when both are hidden in compressed
    object streams, assumes one page per PDF_BYTES_PER_PAGE bytes.
    """
    found = max([len(_PDF_PAGE.findall(data)), *(int(n) for n in _PDF_COUNT.findall(data))])
    return found or max(1, len(data) // PDF_BYTES_PER_PAGE)
