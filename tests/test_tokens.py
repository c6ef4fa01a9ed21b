"""Token estimates: tiktoken when it loads, else the bytes/4 heuristic with exactly one warning."""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from lm_deluge_cli import tokens
from lm_deluge_cli.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    NON_TEXT_PART_TOKENS,
    PDF_PAGE_TOKENS,
    REPLY_PRIMING_TOKENS,
    estimate_message_tokens,
    estimate_text_tokens,
    message_tokens_at_most,
    pdf_pages,
)

LOGGER = "lm_deluge_cli.tokens"


@pytest.fixture(autouse=True)
def fresh_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the counter chosen by earlier tests; monkeypatch restores the old state after."""
    monkeypatch.setattr(tokens, "_encoder", None)
    monkeypatch.setattr(tokens, "_resolved", False)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """tiktoken as it behaves with no network: loading the encoding raises. Records calls."""
    calls: list[str] = []

    def get_encoding(name: str) -> Any:
        calls.append(name)
        raise ConnectionError("Failed to resolve 'openaipublic.blob.core.windows.net'")

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    return calls


class WordEncoding:
    """A stand-in encoding: one token per whitespace-separated word."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        self.kwargs.append(kwargs)
        return list(range(len(text.split())))


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


HEURISTIC = [
    ("", 0),
    ("a", 1),
    ("abcd", 1),
    ("abcde", 2),
    ("x" * 400, 100),
    ("é", 1),  # 2 UTF-8 bytes
    ("日本語", 3),  # 9 bytes
    ("🙂🙂", 2),  # 8 bytes
]


@pytest.mark.parametrize(("text", "expected"), HEURISTIC)
def test_offline_fallback_is_the_heuristic(offline: list[str], text: str, expected: int) -> None:
    assert estimate_text_tokens(text) == expected
    assert offline == [tokens.TIKTOKEN_ENCODING]


def test_offline_fallback_warns_exactly_once(
    offline: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for i in range(200):
        estimate_text_tokens("hello world " * i)
        estimate_message_tokens([{"role": "user", "content": "hi"}])
    records = warnings_from(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert "o200k_base" in message
    assert "ConnectionError" in message
    assert "LM_DELUGE_TOKENIZER=heuristic" in message
    assert offline == ["o200k_base"]


def test_many_threads_resolve_the_counter_once(
    offline: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    start = threading.Barrier(8)
    results: list[int] = []

    def work() -> None:
        start.wait()
        results.append(estimate_text_tokens("abcdefgh"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 8
    assert offline == ["o200k_base"]
    assert len(warnings_from(caplog)) == 1


@pytest.fixture
def hanging_download(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """tiktoken as it behaves on a network that drops packets: get_encoding never returns."""
    release = threading.Event()

    def get_encoding(name: str) -> Any:
        release.wait(10)
        raise ConnectionError("gave up")

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    monkeypatch.setattr(tokens, "TIKTOKEN_LOAD_TIMEOUT_S", 0.05)
    yield release
    release.set()


def test_a_hanging_download_is_not_waited_for(
    hanging_download: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert estimate_text_tokens("abcdefgh") == 2
    records = warnings_from(caplog)
    assert len(records) == 1
    assert "timed out" in records[0].getMessage()


def test_heuristic_setting_skips_tiktoken(
    monkeypatch: pytest.MonkeyPatch, offline: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert [estimate_text_tokens(text) for text, _ in HEURISTIC] == [n for _, n in HEURISTIC]
    assert offline == []
    assert warnings_from(caplog) == []


def test_tiktoken_is_used_when_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    encoding = WordEncoding()
    names: list[str] = []

    def get_encoding(name: str) -> WordEncoding:
        names.append(name)
        return encoding

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    # Ten words, 49 bytes: the heuristic would say 13.
    text = "one two three four five six seven eight nine ten"
    assert estimate_text_tokens(text) == 10
    # Special-token text in a prompt is counted, not refused.
    assert encoding.kwargs[0] == {"disallowed_special": ()}
    assert estimate_text_tokens("<|endoftext|> x") == 2
    assert names == ["o200k_base"]


def test_a_huge_text_is_estimated_without_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    encoding = WordEncoding()
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: encoding)
    huge = "word " * (tokens.TIKTOKEN_MAX_CHARS // 5 + 1)
    assert estimate_text_tokens(huge) == (len(huge) + 3) // 4
    in_message = estimate_message_tokens([{"role": "user", "content": huge}])
    assert in_message == (len(huge) + 3) // 4 + tokens.MESSAGE_OVERHEAD_TOKENS + 3
    assert encoding.kwargs == []  # never handed to tiktoken
    assert estimate_text_tokens("word " * 10) == 10


# --- Message framing -------------------------------------------------------------------


@pytest.fixture
def heuristic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")


FRAME = REPLY_PRIMING_TOKENS
PER_MESSAGE = MESSAGE_OVERHEAD_TOKENS


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], FRAME),
        ([{"role": "user", "content": "abcd"}], FRAME + PER_MESSAGE + 1),
        (
            [
                {"role": "developer", "content": "You are a helpful assistant."},  # 28 bytes
                {"role": "user", "content": "Hello!"},  # 6 bytes
            ],
            FRAME + 2 * PER_MESSAGE + 7 + 2,
        ),
        ([{"role": "assistant", "content": None}], FRAME + PER_MESSAGE),
        ([{"role": "user"}], FRAME + PER_MESSAGE),
        ([{"role": "user", "content": ""}], FRAME + PER_MESSAGE),
        ([{"role": "user", "name": "bob", "content": "abcd"}], FRAME + PER_MESSAGE + 1 + 1),
        # Content given as a list of parts: text parts are counted, other parts are flat.
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "abcdefgh"},
                        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                        {"type": "text", "text": "abcd"},
                    ],
                }
            ],
            FRAME + PER_MESSAGE + 2 + NON_TEXT_PART_TOKENS + 1,
        ),
        ([{"role": "user", "content": []}], FRAME + PER_MESSAGE),
        ([{"role": "user", "content": [{"type": "text", "text": 5}]}], FRAME + PER_MESSAGE + 765),
        ([{"role": "user", "content": ["bare string"]}], FRAME + PER_MESSAGE + 765),
    ],
)
def test_message_tokens(heuristic: None, messages: list[dict[str, Any]], expected: int) -> None:
    assert estimate_message_tokens(messages) == expected


def test_tool_calls_are_counted(heuristic: None) -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    assert estimate_message_tokens([message]) == FRAME + PER_MESSAGE + (len(str(calls)) + 3) // 4


def test_message_tokens_accept_any_iterable(heuristic: None) -> None:
    messages = ({"role": "user", "content": "abcd"} for _ in range(3))
    assert estimate_message_tokens(messages) == FRAME + 3 * (PER_MESSAGE + 1)


def test_message_tokens_use_tiktoken_when_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: WordEncoding())
    messages = [{"role": "user", "content": [{"type": "text", "text": "a b c d e"}]}]
    assert estimate_message_tokens(messages) == FRAME + PER_MESSAGE + 5


class ByteEncoding:
    """The most tokens a byte-level encoding like o200k_base can give: one per UTF-8 byte."""

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        return list(text.encode("utf-8", "surrogatepass"))


_TEXT = st.text(max_size=40)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"])},
    optional={
        "content": st.one_of(
            _TEXT, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}))
        ),
        "name": _TEXT,
    },
)


@pytest.mark.parametrize("counter", ["heuristic", "bytes"])
@settings(max_examples=200, deadline=None)
@given(messages=st.lists(_MESSAGE, max_size=4))
def test_the_bound_found_without_counting_is_never_below_the_count(
    counter: str, messages: list[dict[str, Any]]
) -> None:
    # The run checks a line against its limits with this bound first and counts the line
    # only when the bound does not fit: a bound below the count would let a line through.
    by_bytes = ByteEncoding()
    tokens._encoder = (
        tokens._heuristic if counter == "heuristic" else lambda text: len(by_bytes.encode(text))
    )
    tokens._resolved = True
    bound = message_tokens_at_most(messages)
    assert bound is not None and bound >= estimate_message_tokens(messages)


def test_the_bound_is_none_when_a_part_is_not_text() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert message_tokens_at_most([{"role": "user", "content": [image]}]) is None
    assert message_tokens_at_most([{"role": "user", "content": "abc"}]) == FRAME + PER_MESSAGE + 12


# --- Images and files ------------------------------------------------------------------


def _image_part(size: tuple[int, int], detail: str | None = None) -> dict[str, Any]:
    out = io.BytesIO()
    PILImage.new("RGB", size, (1, 2, 3)).save(out, format="PNG")
    url: dict[str, Any] = {
        "url": f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"
    }
    if detail is not None:
        url["detail"] = detail
    return {"type": "image_url", "image_url": url}


def _file_part(data: bytes, media_type: str) -> dict[str, Any]:
    data_url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "file", "file": {"filename": "f", "file_data": data_url}}


def _pdf(pages: int) -> bytes:
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    body = b"%PDF-1.4\n2 0 obj << /Type /Pages /Kids [" + kids + b"] /Count %d >> endobj\n" % pages
    for i in range(pages):
        body += b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" % (3 + i)
    return body + b"%%EOF\n"


@pytest.mark.parametrize(
    ("part", "provider", "tokens"),
    [
        (_image_part((1024, 1024)), "openai", 765),
        (_image_part((1024, 1024), "low"), "openai", 85),
        (_image_part((1024, 1024)), "anthropic", 1399),  # 1024 × 1024 / 750, rounded up
        (_image_part((1024, 1024)), "anthropic_messages", 1399),
        (_image_part((1024, 1024)), "gemini", 1032),  # 2 × 2 tiles of 258
        (_image_part((4000, 3000)), "anthropic", 1532),  # the provider scales it first
        (_file_part(_pdf(3), "application/pdf"), "openai", 3 * PDF_PAGE_TOKENS["openai"]),
        (_file_part(_pdf(3), "application/pdf"), "gemini", 3 * PDF_PAGE_TOKENS["gemini"]),
        (_file_part(b"abcdefgh", "text/csv"), "openai", 2),
        (_file_part(b"PK\x03\x04", "application/zip"), "openai", NON_TEXT_PART_TOKENS),
        ({"type": "image_url", "image_url": {"url": "data:,aGk="}}, "openai", NON_TEXT_PART_TOKENS),
        ({"type": "file", "file": {"file_id": "file-1"}}, "openai", NON_TEXT_PART_TOKENS),
    ],
)
def test_media_parts_by_provider_rule(
    heuristic: None, part: dict[str, Any], provider: str, tokens: int
) -> None:
    messages = [{"role": "user", "content": [part]}]
    assert estimate_message_tokens(messages, provider=provider) == FRAME + PER_MESSAGE + tokens


@pytest.mark.parametrize(
    ("data", "pages"),
    [
        (_pdf(1), 1),
        (_pdf(12), 12),
        # Pages hidden in compressed object streams: only the tree's /Count shows.
        (b"%PDF-1.5\n<< /Type /Pages /Count 7 >>", 7),
        # Nothing readable at all: one page per 100 KB, at least one.
        (b"%PDF-1.7\n" + b"\x00" * 350_000, 3),
        (b"%PDF-1.7\n", 1),
        # An outline's negative /Count is not a page count.
        (b"%PDF-1.4 << /Type /Page >> << /Count -4 >>", 1),
    ],
)
def test_pdf_pages(data: bytes, pages: int) -> None:
    assert pdf_pages(data) == pages
