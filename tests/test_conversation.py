"""Conversation and Message: the construction API, the OpenAI wire, and round trips through
the OpenAI and Anthropic formats."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from lm_deluge_cli.conversation import (
    Conversation,
    ConversionError,
    File,
    Image,
    MediaError,
    Message,
    Text,
    ToolCall,
    ToolResult,
)
from lm_deluge_cli.images import PROVIDER_LIMITS, data_url_image_size

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n%%EOF\n"
)


def png(size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SMALL = png()
SMALL_URL = f"data:image/png;base64,{b64(SMALL)}"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    PILImage.new("RGB", (4000, 3000), (90, 90, 90)).save(path, format="JPEG")
    return path


# --------------------------------------------------------------------------- construction


def test_construction_api_as_in_the_original(tmp_path: Path) -> None:
    (tmp_path / "doc.pdf").write_bytes(PDF)
    conversation = Conversation.system("Be brief.").add(
        Message.user("What is this?").add_image(SMALL).add_file(tmp_path / "doc.pdf")
    )
    conversation.ai("A chart.").user("Thanks")
    assert [m.role for m in conversation.messages] == ["system", "user", "assistant", "user"]
    parts = conversation.messages[1].parts
    assert isinstance(parts[0], Text) and isinstance(parts[1], Image)
    assert parts[2] == File(PDF, "application/pdf", "doc.pdf")
    assert Message.assistant("x") == Message.ai("x") == Message("assistant", [Text("x")])
    assert Message.user("hi").text == "hi" and Message.ai().text is None
    # The class-level shorthands start a conversation; on an instance they append.
    assert Conversation.user("hi").messages == [Message.user("hi")]
    assert len(Conversation().system("s").user("u").assistant("a").messages) == 3
    # The original library's with_* names still work.
    message = Message.user().with_text("t").with_image(SMALL).with_tool_result("c1", {"ok": 1})
    assert [type(p) for p in message.parts] == [Text, Image, ToolResult]


def test_shorthand_keywords_attach_media(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(SMALL)
    conversation = Conversation.user("look", image=tmp_path / "cat.png", file=PDF)
    kinds = [type(p) for p in conversation.messages[0].parts]
    assert kinds == [Text, Image, File]


def test_max_size_scales_the_image_when_added(photo: Path) -> None:
    image = Message.user().add_image(photo, max_size=400).parts[0]
    assert isinstance(image, Image) and image.size == (400, 300)


def test_a_missing_image_raises_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"gone\.png"):
        Message.user("x").add_image(tmp_path / "gone.png")


# ----------------------------------------------------------------------------- the wire


def test_to_openai_is_the_wire_format(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(PDF)
    conversation = (
        Conversation.system("Be brief.")
        .add(
            Message.user("Read these")
            .add_image(SMALL, detail="high")
            .add_file(tmp_path / "report.pdf")
        )
        .add(Message.ai().add_tool_call("call_1", "lookup", {"q": "cat"}))
        .with_tool_result("call_1", {"answer": 42})
        .with_tool_result("call_2", "plain")
        .ai("Done.")
    )
    assert conversation.to_openai() == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Read these"},
                {"type": "image_url", "image_url": {"url": SMALL_URL, "detail": "high"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "report.pdf",
                        "file_data": f"data:application/pdf;base64,{b64(PDF)}",
                    },
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":"cat"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"answer":42}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "plain"},
        {"role": "assistant", "content": "Done."},
    ]


def test_images_are_fitted_when_converted(photo: Path) -> None:
    conversation = Conversation().add(Message.user("describe").add_image(photo))
    wire = conversation.to_openai()[0]["content"][1]["image_url"]["url"]
    assert data_url_image_size(wire) == (2000, 1500)
    openai = conversation.to_openai(PROVIDER_LIMITS["openai"])[0]["content"][1]["image_url"]["url"]
    assert data_url_image_size(openai) == (1024, 768)
    _, anthropic = conversation.to_anthropic()
    source = anthropic[0]["content"][1]["source"]
    assert source["media_type"] == "image/jpeg"
    assert data_url_image_size(f"data:image/jpeg;base64,{source['data']}") == (1238, 928)
    _, contents = conversation.to_gemini()
    inline = contents[0]["parts"][1]["inlineData"]
    assert data_url_image_size(f"data:image/jpeg;base64,{inline['data']}") == (3072, 2304)


def test_tool_results_in_a_user_turn_come_first() -> None:
    message = Message.user("and now?").add_tool_result("t1", "sunny")
    assert message.to_openai() == [
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "user", "content": "and now?"},
    ]


def test_turns_openai_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="only hold tool results"):
        Message("tool", [Text("x")]).to_openai()
    with pytest.raises(ValueError, match="user message cannot hold tool calls"):
        Message.user().add_tool_call("c", "f", {}).to_openai()
    assert Message.user().to_openai() == [{"role": "user", "content": ""}]


def test_to_gemini_and_token_counts(monkeypatch: pytest.MonkeyPatch, photo: Path) -> None:
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
    conversation = Conversation.system("Be brief.").add(Message.user("hi").add_image(photo))
    system, contents = conversation.to_gemini()
    assert system == {"parts": [{"text": "Be brief."}]}
    assert contents[0]["role"] == "user" and contents[0]["parts"][0] == {"text": "hi"}
    # Framing (3 + 4 per message) and text, plus each provider's image rule.
    text = 3 + 4 + 3 + 4 + 1
    assert conversation.count_tokens("openai") == text + 765
    assert conversation.count_tokens("anthropic") == text + 1532
    assert conversation.count_tokens("gemini") == text + 258 * 4 * 3


def test_fingerprint_follows_the_content() -> None:
    one = Conversation.user("hi").add(Message.user().add_image(SMALL))
    two = Conversation.user("hi").add(Message.user().add_image(SMALL_URL))
    assert one.fingerprint == two.fingerprint != Conversation.user("ho").fingerprint


# ---------------------------------------------------------------------------- round trips

OPENAI: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in the picture?"},
            {"type": "image_url", "image_url": {"url": SMALL_URL}},
        ],
    },
    {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q":"cat"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "It is a cat."},
]

ANTHROPIC: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in the picture?"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": b64(SMALL)},
            },
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "a cat"}],
            },
            {"type": "text", "text": "Thanks"},
        ],
    },
    {"role": "assistant", "content": "It is a cat."},
]


def test_openai_round_trip() -> None:
    assert Conversation.from_openai(OPENAI).to_openai() == OPENAI


def test_anthropic_round_trip() -> None:
    system, messages = Conversation.from_anthropic(
        ANTHROPIC, system="You are terse."
    ).to_anthropic()
    assert (system, messages) == ("You are terse.", ANTHROPIC)


def test_openai_to_anthropic_and_back() -> None:
    assert Conversation.from_openai(OPENAI).to_anthropic() == ("You are terse.", ANTHROPIC)
    assert Conversation.from_anthropic(ANTHROPIC, "You are terse.").to_openai() == OPENAI


def test_from_openai_reads_every_part_kind(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(SMALL)
    (tmp_path / "a.pdf").write_bytes(PDF)
    conversation = Conversation.from_openai(
        [
            {"role": "developer", "content": [{"type": "text", "text": "d"}]},
            {
                "role": "user",
                "content": [
                    {"type": "image", "path": "cat.png", "detail": "low"},
                    {"type": "image_url", "image_url": {"url": "file:cat.png"}},
                    {"type": "image_url", "image_url": "https://example.com/x.png"},
                    {"type": "file", "path": "a.pdf"},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                    {
                        "type": "file",
                        "file": {
                            "filename": "b.pdf",
                            "file_data": f"data:application/pdf;base64,{b64(PDF)}",
                        },
                    },
                ],
            },
        ],
        base_dir=tmp_path,
    )
    system, user = conversation.messages
    assert system == Message("system", [Text("d")])
    assert [type(p) for p in user.parts] == [Image, Image, Image, File, File, File]
    assert user.parts[0] == Image(SMALL, "image/png", detail="low")
    assert user.parts[2] == Image(url="https://example.com/x.png")
    assert user.parts[4] == File(None, file_id="file-abc")
    assert user.parts[4].openai_part() == {"type": "file", "file": {"file_id": "file-abc"}}
    assert user.parts[5] == File(PDF, "application/pdf", "b.pdf")


# --------------------------------------------------------------------- prompt-cache breakpoints

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}

# Anthropic turns with a breakpoint in every place a block can carry one.
CACHED_ANTHROPIC: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)},
                "title": "r.pdf",
                "cache_control": HOUR,
            },
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": b64(SMALL)},
                "cache_control": EPHEMERAL,
            },
            {"type": "text", "text": "Summarize.", "cache_control": EPHEMERAL},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}, "cache_control": EPHEMERAL}
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [{"type": "text", "text": "42"}],
                "cache_control": EPHEMERAL,
            },
            {"type": "text", "text": "Thanks"},
        ],
    },
]
CACHED_SYSTEM = [
    {"type": "text", "text": "Rules."},
    {"type": "text", "text": "Long context.", "cache_control": HOUR},
]


def test_anthropic_breakpoints_survive_the_round_trip() -> None:
    conversation = Conversation.from_anthropic(CACHED_ANTHROPIC, CACHED_SYSTEM)
    assert conversation.to_anthropic() == (CACHED_SYSTEM, CACHED_ANTHROPIC)


def test_breakpoints_in_the_openai_messages() -> None:
    wire = Conversation.from_anthropic(CACHED_ANTHROPIC, CACHED_SYSTEM).to_openai()
    assert wire[0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "Rules."},
            {"type": "text", "text": "Long context.", "cache_control": HOUR},
        ],
    }
    assert [part.get("cache_control") for part in wire[1]["content"]] == [
        HOUR,
        EPHEMERAL,
        EPHEMERAL,
    ]
    assert wire[2]["tool_calls"][0]["cache_control"] == EPHEMERAL
    assert wire[3] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "42",
        "cache_control": EPHEMERAL,
    }
    # The OpenAI messages read back give the same messages.
    assert Conversation.from_openai(wire).to_openai() == wire


def test_a_lone_cached_text_part_is_not_flattened() -> None:
    cached = [
        {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": EPHEMERAL}]}
    ]
    assert Conversation.from_openai(cached).to_openai() == cached
    assert Conversation.from_anthropic(cached).to_openai() == cached


def test_a_system_prompt_without_breakpoints_is_still_one_text() -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert Conversation.from_anthropic([], blocks).messages == [Message.system("a\nb")]


@pytest.mark.parametrize(
    ("messages", "system", "match"),
    [
        ([{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "1h"}]}],
         None, r"messages\[0\]\.content\[0\]: 'cache_control' must be an object"),
        ([], [{"type": "text", "text": "x", "cache_control": EPHEMERAL}, {"type": "image"}],
         "system prompt can only hold text blocks"),
    ],
)  # fmt: skip
def test_breakpoints_that_are_not_objects(messages: Any, system: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Conversation.from_anthropic(messages, system)


def test_openai_breakpoints_that_are_not_objects() -> None:
    tool = {"role": "tool", "tool_call_id": "t", "content": "x", "cache_control": True}
    with pytest.raises(ConversionError, match=r"messages\[0\]: 'cache_control' must be an object"):
        Conversation.from_openai([tool])


def test_from_anthropic_reads_documents_and_drops_thinking(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(SMALL)
    conversation = Conversation.from_anthropic(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": b64(PDF),
                        },
                        "title": "r.pdf",
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"},
                    },
                    {"type": "image", "path": "cat.png"},
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/c.png"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "ok"},
                ],
            },
        ],
        system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        base_dir=tmp_path,
    )
    system, user, assistant = conversation.messages
    # A cached system block keeps its breakpoint.
    assert system == Message("system", [Text("sys", {"type": "ephemeral"})])
    assert user.parts == [
        File(PDF, "application/pdf", "r.pdf"),
        Text("plain doc"),
        Image(SMALL, "image/png"),
        Image(url="https://example.com/c.png"),
    ]
    assert assistant == Message.ai("ok")
    assert user.to_openai()[0]["content"][0]["file"]["filename"] == "r.pdf"


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"role": "system", "content": "s"}], r"messages\[0\]: an Anthropic message's role"),
        (
            [{"role": "user", "content": [{"type": "image", "path": "gone.png"}]}],
            r"messages\[0\]\.content\[0\]: cannot read image 'gone.png'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
                    ],
                }
            ],
            "document URLs are not fetched",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ],
            r"image.source.type 'file' is not supported",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}
                    ],
                }
            ],
            "can only hold text",
        ),
        ([{"role": "user", "content": [{"type": "audio"}]}], "an? 'audio' block is not supported"),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": 3}],
                }
            ],
            "input must be an object",
        ),
        ([{"role": "user", "content": ["bare"]}], "must be an object"),
        ([{"role": "user", "content": 5}], "string or a list"),
    ],
)
def test_from_anthropic_errors_name_the_message_and_part(
    messages: list[dict[str, Any]], match: str, tmp_path: Path
) -> None:
    with pytest.raises(ConversionError, match=match):
        Conversation.from_anthropic(messages, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ([{"role": "tool", "content": "x"}], "string 'tool_call_id'"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "cat.png"}}]}],
            "must be an http",
        ),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_data": "abc"}}]}],
            "base64 data: URL",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio"}]}],
            "'input_audio' part is not supported",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}],
                }
            ],
            r"tool_calls\[0\]: a tool call needs",
        ),
        (["not a dict"], "must be an object"),
    ],
)
def test_from_openai_errors(messages: list[Any], match: str) -> None:
    with pytest.raises(ConversionError, match=match):
        Conversation.from_openai(messages)


def test_parts_are_plain_values() -> None:
    call = ToolCall("c", "f", {"a": 1})
    assert call.openai_call()["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert ToolResult.of("c", [1, 2]) == ToolResult("c", "[1,2]")
    assert File.load(PDF).filename == "document.pdf"
    assert File.load(b"a,b\n", filename="t.csv").media_type == "text/csv"
    unknown = File.load(b"\x00\x01")
    assert (unknown.media_type, unknown.filename) == ("application/octet-stream", "file.bin")
    assert File.load(PDF).sha256 == File.load(b64(PDF)).sha256
