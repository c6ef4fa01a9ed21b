"""parse_line: local image and file paths are read relative to the input folder and inlined."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.images import data_url_image_size
from lm_deluge_cli.io.parse import BadLine, parse_line
from lm_deluge_cli.types import Prompt


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def media(_png: Callable[..., bytes], tmp_path: Path) -> Path:
    """An input folder with imgs/cat.png, notes.png (text, not an image) and doc.pdf."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "cat.png").write_bytes(_png())
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    return tmp_path


def _with_media(obj: Any, base_dir: Path) -> Prompt | BadLine:
    return parse_line(7, orjson.dumps(obj), base_dir=base_dir)


def test_local_images_are_read_relative_to_the_input_folder(
    _png: Callable[..., bytes], media: Path
) -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    p = _with_media(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "path": "imgs/cat.png", "detail": "low"},
                        {"type": "image_url", "image_url": {"url": "file:imgs/cat.png"}},
                        {"type": "file", "path": "doc.pdf"},
                        audio,
                    ],
                },
            ]
        },
        media,
    )
    assert isinstance(p, Prompt), p
    url = _data_url(_png())
    pdf = _data_url(b"%PDF-1.4\n%%EOF\n", "application/pdf")
    assert p.messages[1]["content"] == [
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "file", "file": {"filename": "doc.pdf", "file_data": pdf}},
        audio,  # parts that point at no local file are left as they are
    ]
    assert p.messages[0] == {"role": "system", "content": "s"}


def test_local_media_keep_their_prompt_cache_breakpoints(
    _png: Callable[..., bytes], media: Path
) -> None:
    ephemeral = {"type": "ephemeral"}
    parts = [
        {"type": "image", "path": "imgs/cat.png", "cache_control": ephemeral},
        {"type": "file", "path": "doc.pdf", "cache_control": ephemeral},
    ]
    p = _with_media({"messages": [{"role": "user", "content": parts}]}, media)
    assert isinstance(p, Prompt), p
    assert [part["type"] for part in p.messages[0]["content"]] == ["image_url", "file"]
    assert [part["cache_control"] for part in p.messages[0]["content"]] == [ephemeral] * 2


def test_without_a_base_dir_paths_are_relative_to_the_working_directory(
    _png: Callable[..., bytes], media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(media)
    content = [{"type": "image", "path": "imgs/cat.png"}]
    line = {"messages": [{"role": "user", "content": content}]}
    p = parse_line(1, orjson.dumps(line))  # the old two-argument call still works
    assert isinstance(p, Prompt)
    assert p.messages[0]["content"][0]["image_url"]["url"] == _data_url(_png())


def test_a_large_local_image_is_scaled_down(_png: Callable[..., bytes], media: Path) -> None:
    (media / "big.jpg").write_bytes(_png((4000, 3000), "JPEG"))
    p = _with_media(
        {"messages": [{"role": "user", "content": [{"type": "image", "path": "big.jpg"}]}]}, media
    )
    assert isinstance(p, Prompt)
    url = p.messages[0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert data_url_image_size(url) == (2000, 1500)


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        (
            {"type": "image", "path": "imgs/gone.png"},
            "cannot read image 'imgs/gone.png' ({base}/imgs/gone.png): no such file",
        ),
        (
            {"type": "image_url", "image_url": {"url": "file:gone.png"}},
            "cannot read image 'file:gone.png' ({base}/gone.png): no such file",
        ),
        ({"type": "image", "path": "notes.png"}, "notes.png is not an image Pillow can read"),
        (
            {"type": "file", "path": "imgs"},
            "cannot read file 'imgs' ({base}/imgs): it is a directory, not a regular file "
            "(only regular files are read)",
        ),
        ({"type": "image", "path": 5}, "'path' must be a non-empty string"),
    ],
)
def test_unreadable_local_media_is_a_bad_line_naming_the_file(
    media: Path, part: dict[str, Any], reason: str
) -> None:
    line = {
        "id": "x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, part]}],
    }
    assert _with_media(line, media) == BadLine(
        7, f"line 7: 'messages[0].content[1]': {reason.format(base=media)}", "x"
    )


def test_a_missing_image_in_an_anthropic_line_is_a_bad_line(media: Path) -> None:
    line = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}],
            },
            {"role": "user", "content": [{"type": "image", "path": "nope.png"}]},
        ]
    }
    result = _with_media(line, media)
    assert isinstance(result, BadLine)
    assert result.reason.startswith(
        "line 7: 'messages[1].content[0]': cannot read image 'nope.png'"
    )


def test_batch_api_lines_read_local_media_too(media: Path) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image", "path": "gone.png"}]}]}
    result = _with_media({"custom_id": "r1", "body": body}, media)
    assert isinstance(result, BadLine)
    assert result.reason.startswith("line 7: 'body.messages[0].content[0]': cannot read image")
