"""What every wire format of the mock provider shares: token estimates, the deterministic
reply text and OpenAI's duration format. Pure functions, no state.

Each format (`lm_deluge_cli.mock.formats`) turns its request into OpenAI-shaped
chat messages first, so one prompt gets the same reply and usage whichever API carries it.

Yes/no questions: when a system (or developer) message or the last user message contains
the words "yes or no" (any case), the reply is exactly ``Yes`` or ``No``. A digest of the
messages' texts gives p(yes), between 0.02 and 0.98 and never 0.5, and the likelier answer
is the reply. Where a format returns logprobs, that one token's alternatives are ``Yes``
and ``No`` with log-probabilities of p(yes) and 1 - p(yes), each times 0.99, then
lower-ranked spellings ("yes", " Yes" …) sharing the last 0.01: so p(yes) is exactly
exp(yes) / (exp(yes) + exp(no)), and no step's probabilities add up to more than 1.
(JSON answers, `structured`, come first: a request that asks for JSON gets JSON.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
from typing import Any, NamedTuple

import orjson

__all__ = [
    "DEFAULT_DIMENSIONS",
    "DEFAULT_MAX_TOKENS",
    "FILE_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "WORDS",
    "TokenLogprob",
    "asked_text",
    "content_text",
    "count_prompt_tokens",
    "count_text_tokens",
    "cut_text",
    "embedding_vector",
    "format_duration",
    "mock_completion",
    "prompt_text",
    "rank_documents",
    "relevance_score",
    "reply_text",
    "rerank_tokens",
    "token_logprobs",
    "yes_probability",
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
# The word each digest byte picks (byte % 64), looked up without the arithmetic; and the
# same word capitalized, as a reply's first word is.
_WORD_OF_BYTE = tuple(WORDS[b % len(WORDS)] for b in range(256))
_FIRST_WORD_OF_BYTE = tuple(word.capitalize() for word in _WORD_OF_BYTE)


def _message_text(content: Any) -> tuple[str, int]:
    """A message's text, and the tokens of the images and files it carries. A tool call
    block (``tool_use``) reads as its name and JSON input, a tool result as its content."""
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
            elif kind == "tool_use":
                texts.append(f"{part.get('name')}{_json_text(part.get('input'))}")
            elif kind == "tool_result":
                text, inner = _message_text(part.get("content"))
                texts.append(text)
                media += inner
    return "\n".join(texts), media


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _calls_text(calls: Any) -> str:
    """The text of an OpenAI message's ``tool_calls``: each function's name and arguments."""
    texts: list[str] = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts.append(f"{function.get('name')}{_json_text(function.get('arguments'))}")
    return "\n".join(texts)


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
    """Prompt tokens as the mock counts them: text tokens (tool calls and results too), 85
    per image, a text file's text or 258 per other file, plus 4 per message."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            text, media = content, 0
        else:
            text, media = _message_text(content)
        if message.get("tool_calls"):
            text += _calls_text(message["tool_calls"])
        # count_text_tokens(text), written out: this runs for every message of every request.
        total += -(-len(text.encode()) // 4) + media + MESSAGE_OVERHEAD_TOKENS
    return total


def mock_completion(messages: list[dict[str, Any]], model: str, variant: int = 0) -> str:
    """The deterministic reply to these messages from this model (same input, same text);
    each `variant` above 0 is another answer to them (several samples of one prompt)."""
    asked: dict[str, Any] = {"messages": messages, "model": model}
    if variant:
        asked["variant"] = variant
    canonical = orjson.dumps(asked, option=orjson.OPT_SORT_KEYS, default=str)
    digest = hashlib.blake2b(canonical, digest_size=8).digest()
    # Six words picked by the digest's first bytes, the first capitalized: written out, as
    # this is made for every answer.
    word = _WORD_OF_BYTE
    reply = (
        f"Mock reply {digest[:4].hex()} from {model}: {_FIRST_WORD_OF_BYTE[digest[0]]} "
        f"{word[digest[1]]} {word[digest[2]]} {word[digest[3]]} {word[digest[4]]} "
        f"{word[digest[5]]}."
    )
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        # Tool results travel in user turns in some formats; the user's own words are echoed.
        if isinstance(content, str):
            echo = " ".join(content.split())[:40]
        elif _holds_tool_results(content):
            continue
        else:
            echo = " ".join(_message_text(content)[0].split())[:40]
        if echo:
            return f'{reply} You said: "{echo}"'
        break
    return reply


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or its parts' texts one per line (tool
    calls and results included, as the token count reads them)."""
    return _message_text(content)[0]


def _holds_tool_results(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "tool_result" for part in content
    )


def prompt_text(messages: list[dict[str, Any]], roles: tuple[str, ...]) -> str:
    """The texts of the messages with these roles, one per line."""
    texts: list[str] = []
    for message in messages:
        if message.get("role") in roles:
            content = message.get("content")
            text = content if isinstance(content, str) else _message_text(content)[0]
            if text:
                texts.append(text)
    return "\n".join(texts)


# A question the mock answers with one word (see the module docstring).
_YES_OR_NO = re.compile(r"\byes\s+or\s+no\b", re.IGNORECASE)
# The roles whose messages instruct the model, as a system prompt does.
_INSTRUCTIONS = ("system", "developer")
# The probability the alternatives below Yes and No share, halving down the ranks.
_OTHER_SHARE = 0.01
_OTHER_ANSWERS = ("yes", "no", " Yes", " No", "YES", "NO", "Y", "N", "Maybe", "Sure")
# Top alternatives a step carries: the most any API lets a request ask for.
_MAX_TOP = 20


class TokenLogprob(NamedTuple):
    """One generated token: its log-probability, and the likeliest tokens at that step
    (best first, the token itself among them)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


def yes_probability(messages: list[dict[str, Any]]) -> float | None:
    """p(yes) for a yes/no question, or None when the messages ask none."""
    question = asked_text(messages)
    # Every letter the pattern matches case-insensitively folds to its own ("ſ" to "s"), so
    # a text it matches says "yes" once folded; most texts do not, and are not searched.
    if "yes" not in question.casefold() or not _YES_OR_NO.search(question):
        return None
    every = prompt_text(messages, ("system", "developer", "user", "assistant"))
    digest = hashlib.blake2b(f"yes-or-no\x00{every}".encode(), digest_size=8).digest()
    p_yes = 0.02 + int.from_bytes(digest, "big") % 9601 / 10000
    return 0.5001 if p_yes == 0.5 else p_yes


def asked_text(messages: list[dict[str, Any]]) -> str:
    """What the messages ask, as the mock reads it: the instructions' texts one per line
    (``prompt_text`` of the system and developer messages), a newline, then the last user
    message's text. A yes/no question is looked for in it, and JSON asked for in its first
    part (`structured`). One pass, as it is read for every answer."""
    instructions: list[str] = []
    last_user: Any = None
    for message in messages:
        role = message.get("role")
        if role == "user":
            last_user = message.get("content")
        elif role in _INSTRUCTIONS:
            content = message.get("content")
            text = content if isinstance(content, str) else _message_text(content)[0]
            if text:
                instructions.append(text)
    question = last_user if isinstance(last_user, str) else _message_text(last_user)[0]
    return "\n".join(instructions) + "\n" + question


def _yes_or_no(p_yes: float, variant: int = 0) -> str:
    """The likelier answer; another sample (`variant` above 0) says Yes with probability
    p(yes), as a model sampled several times would."""
    if not variant:
        return "Yes" if p_yes > 0.5 else "No"
    digest = hashlib.blake2b(f"yes-or-no-sample\x00{variant}".encode(), digest_size=8).digest()
    return "Yes" if int.from_bytes(digest, "big") / 2**64 < p_yes else "No"


def token_logprobs(messages: list[dict[str, Any]], text: str) -> list[TokenLogprob]:
    """Made-up but deterministic log-probabilities for a reply's tokens (one per word), each
    with `_MAX_TOP` alternatives for a format to cut to what the request asks. The answer to
    a yes/no question gets the alternatives the module docstring describes."""
    p_yes = yes_probability(messages)
    if p_yes is not None and text in ("Yes", "No"):
        answers = [("Yes", p_yes), ("No", 1.0 - p_yes)]
        ranked = [(token, math.log(p * (1 - _OTHER_SHARE))) for token, p in answers]
        ranked.sort(key=lambda pair: -pair[1])
        for rank, other in enumerate(_OTHER_ANSWERS, 1):
            ranked.append((other, math.log(_OTHER_SHARE / 2**rank)))
        return [TokenLogprob(text, dict(ranked)[text], tuple(ranked))]
    steps: list[TokenLogprob] = []
    for i, token in enumerate(re.findall(r"\s*\S+", text)):
        seed = hashlib.blake2b(f"{i}:{token}".encode(), digest_size=4).digest()
        logprob = -(int.from_bytes(seed, "big") % 2000) / 1000
        top = [(token, logprob)]
        for j in range(1, _MAX_TOP):
            other = " " + WORDS[(seed[j % 4] + j) % len(WORDS)]
            top.append((other, round(logprob - 1.5 * j, 3)))
        steps.append(TokenLogprob(token, logprob, tuple(top)))
    return steps


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
    messages: list[dict[str, Any]],
    model: str,
    max_tokens: int | None,
    text: str | None = None,
    variant: int = 0,
) -> tuple[str, int, bool]:
    """(text, completion tokens, cut short): the reply, cut at ``max_tokens`` if it is longer.

    ``text`` is the reply when the caller has one (a JSON answer); else it is ``Yes`` or
    ``No`` for a yes/no question, else the mock's sentence (`variant` as `mock_completion`)."""
    if text is None:
        p_yes = yes_probability(messages)
        if p_yes is None:
            text = mock_completion(messages, model, variant)
        else:
            text = _yes_or_no(p_yes, variant)
    return cut_text(text, max_tokens)


def cut_text(text: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """(text, its tokens, cut short): `text` cut at ``max_tokens`` if it is longer."""
    tokens = -(-len(text.encode()) // 4)  # count_text_tokens(text), written out
    if max_tokens is not None and tokens > max_tokens:
        # Four bytes a token, as counted; a character split in two is dropped whole.
        return text.encode()[: max_tokens * 4].decode(errors="ignore"), max_tokens, True
    return text, tokens, False


# --- embeddings and rerank ---------------------------------------------------------------

# The vector size when a request names none: far smaller than any real model's, so answers
# for thousands of texts stay small. A request's own dimensions are always honoured.
DEFAULT_DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def embedding_vector(model: str, text: str, dimensions: int) -> list[float]:
    """The mock's embedding of ``text``: a deterministic unit vector from (model, text),
    rounded to 6 decimals. Shorter vectors are the renormalised start of longer ones, as
    Matryoshka embeddings cut to fewer dimensions are."""
    seed = hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).digest()
    stream = hashlib.shake_256(seed).digest(2 * dimensions)
    # Each pair of bytes (a big-endian unsigned short) is a value evenly spread over [-1, 1].
    raw = [(pair - 32767.5) / 32767.5 for pair in struct.unpack(f">{dimensions}H", stream)]
    norm = math.sqrt(sum([value * value for value in raw])) or 1.0
    return [round(value / norm, 6) for value in raw]


def relevance_score(model: str, query: str, document: str) -> float:
    """How relevant ``document`` is to ``query``, in [0, 1] and rounded to 6 decimals: mostly
    the share of the query's words the document contains, plus a little deterministic noise,
    so a document that repeats the query outranks unrelated ones."""
    words = set(_WORD.findall(query.lower()))
    overlap = len(words & set(_WORD.findall(document.lower()))) / len(words) if words else 0.0
    digest = hashlib.blake2b(f"{model}\x00{query}\x00{document}".encode(), digest_size=4)
    noise = int.from_bytes(digest.digest(), "big") / 0xFFFFFFFF
    return round(0.7 * overlap + 0.3 * noise, 6)


def rank_documents(
    model: str, query: str, documents: list[str], top_n: int | None = None
) -> list[tuple[int, float]]:
    """``(index, score)`` of the documents, most relevant first (ties in input order), cut to
    ``top_n`` when it is given."""
    scored = [(i, relevance_score(model, query, doc)) for i, doc in enumerate(documents)]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored if top_n is None else scored[:top_n]


def rerank_tokens(query: str, documents: list[str]) -> int:
    """A rerank request's tokens as Voyage defines them: the query's tokens once per document,
    plus every document's own."""
    query_tokens = count_text_tokens(query)
    return sum(query_tokens + count_text_tokens(doc) for doc in documents)
