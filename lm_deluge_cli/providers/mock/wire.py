"""What every wire format of the mock provider shares: token estimates, the deterministic
reply text and OpenAI's duration format. Pure functions, no state.

Each format (`lm_deluge_cli.providers.mock.formats`) turns its request into OpenAI-shaped
chat messages first, so one prompt gets the same reply and usage whichever API carries it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import Any

import orjson

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FILE_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "WORDS",
    "count_prompt_tokens",
    "count_text_tokens",
    "format_duration",
    "mock_completion",
    "reply_text",
]

# OpenAI reserves this many completion tokens against TPM when a request sets no maximum.
DEFAULT_MAX_TOKENS = 16
MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 85  # what OpenAI bills for a low-detail image
# A file that is not text (a PDF) counts flat, as an image does: what Gemini bills a PDF page.
FILE_TOKENS = 258

# Words the mock's replies are made of (64 of them, so a digest byte picks one evenly).
_WORD_LIST = """
amber brisk cobalt dune ember fable glade harbor ivory juniper kestrel lumen meadow nimbus orchid
pebble quartz river saffron timber umber velvet willow xenon yarrow zephyr atlas beacon cedar delta
echo fjord granite heron iris jasper kelp lantern marble nectar onyx prism quill raven sable thistle
upland vortex wren yonder zinnia alder birch clover dawn elm fern grove hazel indigo jade lilac mint
nova
"""
WORDS: tuple[str, ...] = tuple(_WORD_LIST.split())


def _message_text(content: Any) -> tuple[str, int]:
    """A message's text, and the tokens of the images and files it carries."""
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    media = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = str(part.get("type", ""))
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind.startswith("image"):
                media += IMAGE_TOKENS
            elif kind in ("document", "file"):
                media += _file_tokens(part)
    return "\n".join(texts), media


def _file_tokens(part: dict[str, Any]) -> int:
    """A text file's own text tokens, else FILE_TOKENS. Reads Anthropic's document blocks
    (text and content sources are text) and OpenAI's file parts (text/* data URLs)."""
    source = part.get("source")
    if isinstance(source, dict):
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return count_text_tokens(source["data"])
        if source.get("type") == "content":
            text, media = _message_text(source.get("content"))
            return count_text_tokens(text) + media
    file = part.get("file")
    decoded = _data_url_text(file.get("file_data")) if isinstance(file, dict) else None
    return FILE_TOKENS if decoded is None else count_text_tokens(decoded)


def _data_url_text(url: Any) -> str | None:
    """The text of a base64 ``data:text/…`` URL; None for any other value."""
    if not isinstance(url, str) or not url.startswith("data:text/"):
        return None
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def count_text_tokens(text: str) -> int:
    """The mock's token estimate for a text: one token per four UTF-8 bytes, rounded up."""
    return -(-len(text.encode()) // 4)


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens as the mock counts them: text tokens, 85 per image, a text file's text or
    258 per other file, plus 4 per message."""
    total = 0
    for message in messages:
        text, media = _message_text(message.get("content"))
        total += count_text_tokens(text) + media + MESSAGE_OVERHEAD_TOKENS
    return total


def mock_completion(messages: list[dict[str, Any]], model: str) -> str:
    """The deterministic reply to these messages from this model (same input, same text)."""
    canonical = orjson.dumps(
        {"messages": messages, "model": model}, option=orjson.OPT_SORT_KEYS, default=str
    )
    digest = hashlib.blake2b(canonical, digest_size=8).digest()
    words = " ".join(WORDS[b % len(WORDS)] for b in digest[:6])
    reply = f"Mock reply {digest.hex()[:8]} from {model}: {words.capitalize()}."
    for message in reversed(messages):
        if message.get("role") == "user":
            echo = " ".join(_message_text(message.get("content"))[0].split())[:40]
            if echo:
                reply += f' You said: "{echo}"'
            break
    return reply


def format_duration(seconds: float) -> str:
    """OpenAI's reset format (``20ms``, ``1s``, ``1m30.5s``, ``6m0s``), rounded up to 1 ms."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    minutes, rest = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = str(rest // 1000) + (f".{rest % 1000:03d}".rstrip("0") if rest % 1000 else "")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def reply_text(
    messages: list[dict[str, Any]], model: str, max_tokens: int | None
) -> tuple[str, int, bool]:
    """(text, completion tokens, cut short): the reply, cut at ``max_tokens`` if it is longer."""
    text = mock_completion(messages, model)
    tokens = count_text_tokens(text)
    if max_tokens is not None and tokens > max_tokens:
        # Four bytes a token, as counted; a character split in two is dropped whole.
        return text.encode()[: max_tokens * 4].decode(errors="ignore"), max_tokens, True
    return text, tokens, False
