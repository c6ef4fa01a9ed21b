"""OpenAI chat messages as Messages API turns: the system prompt, and user and assistant turns
of content blocks (text, images, documents, tool_use and tool_result). Bedrock's InvokeModel
takes the same turns."""

from __future__ import annotations

import base64
from typing import Any

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.anthropic_answer import THINKING_BLOCKS
from lm_deluge_cli.providers.parts import named_function, parse_data_url
from lm_deluge_cli.results import decoded_arguments
from lm_deluge_cli.types import Message

__all__ = ["IMAGE_MEDIA_TYPES", "translate_messages", "unsendable", "with_cache_control"]

# The only image types the API accepts in a base64 source.
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# A document block takes a PDF as a base64 source and text as a text source, whose only media
# type is text/plain: other text files (.csv, .md, …) go as plain text, as the docs advise.
PDF_MEDIA_TYPE = "application/pdf"
TEXT_MEDIA_TYPE = "text/plain"


def translate_messages(
    messages: list[Message],
    *,
    url_images: bool = True,
    wire_format: str = "anthropic_messages",
) -> tuple[str | list[Message] | None, list[Message]]:
    """(system prompt, Anthropic messages) for OpenAI chat messages.

    System and developer messages make the system prompt, tool messages user turns of
    tool_result blocks, and turns of one role in a row are merged, as the API wants them to
    alternate. A user's file parts become document blocks (PDFs and text files) or image
    blocks. `url_images=False` refuses http(s) image URLs (Bedrock takes none); file parts
    never become URL sources.

    Prompt-cache breakpoints are kept where the messages put them: ``cache_control`` on a
    text, image_url or file part, on a tool call (its tool_use block), on a tool message (its
    tool_result block) or on a system part (the system prompt is then a list of text blocks
    instead of one string). An
    assistant message's ``reasoning`` (``{"text", "parts"}``, as a record holds it) gives the
    turn its thinking blocks back, first and exactly as received: only parts of
    `wire_format`; parts of other formats are dropped.
    """
    system: list[Message] = []
    turns: list[Message] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            system += _blocks(message.get("content"), where, url_images, media=False)
            continue
        if role == "user":
            blocks = _blocks(message.get("content"), where, url_images, media=True)
        elif role == "assistant":
            blocks = _thinking_blocks(message.get("reasoning"), where, wire_format)
            blocks += _blocks(message.get("content"), where, url_images, media=False)
            blocks += [_tool_use(call, where) for call in message.get("tool_calls") or []]
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        else:
            raise unsendable(f"{where} has role {role!r}")
        if not blocks:
            continue  # the API refuses empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # A lone text block is sent as a plain string, as in the API's own examples.
        if len(turn["content"]) == 1 and _plain_text(turn["content"][0]):
            turn["content"] = turn["content"][0]["text"]
    if all(map(_plain_text, system)):
        return "\n\n".join(block["text"] for block in system) or None, turns
    return system, turns


def _plain_text(block: Message) -> bool:
    """Whether a block is text and nothing else (no cache_control): sendable as a string."""
    return block["type"] == "text" and block.keys() == {"type", "text"}


def _blocks(content: Any, where: str, url_images: bool, *, media: bool) -> list[Message]:
    # Empty text blocks are refused by the API, so they are dropped.
    if not content:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise unsendable(f"{where}.content is neither a string nor a list of parts")
    blocks: list[Message] = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}.content[{number}]"
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(with_cache_control({"type": "text", "text": part["text"]}, part, at))
        elif kind == "image_url" and media:
            blocks.append(
                with_cache_control(_image(part.get("image_url"), at, url_images), part, at)
            )
        elif kind == "file" and media:
            blocks.append(with_cache_control(_file(part.get("file"), at), part, at))
        else:
            raise unsendable(f"{at} is a {kind!r} part, not supported here")
    return blocks


def with_cache_control(block: Message, source: Message, where: str) -> Message:
    """`block` with the prompt-cache breakpoint `source` carries (``cache_control``), if any;
    `where` names the source in the error for one that is not an object."""
    control = source.get("cache_control")
    if control is None:
        return block
    if not isinstance(control, dict):
        raise unsendable(f'{where}.cache_control must be an object, e.g. {{"type": "ephemeral"}}')
    return {**block, "cache_control": control}


def _thinking_blocks(reasoning: Any, where: str, wire_format: str) -> list[Message]:
    """The thinking and redacted_thinking blocks of an assistant message's reasoning that
    came from `wire_format`, as received."""
    if reasoning is None:
        return []
    parts = reasoning.get("parts") if isinstance(reasoning, dict) else None
    if not isinstance(parts, list):
        raise unsendable(f"{where}.reasoning must be an object with a list of 'parts'")
    blocks: list[Message] = []
    for part in parts:
        block = part.get("block") if isinstance(part, dict) else None
        if not isinstance(block, dict) or part.get("format") != wire_format:
            continue
        if block.get("type") not in THINKING_BLOCKS:
            raise unsendable(f"{where}.reasoning holds a {block.get('type')!r} block")
        blocks.append(block)
    return blocks


def _image(image: Any, where: str, url_images: bool) -> Message:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise unsendable(f"{where} has no image_url.url")
    if url.startswith("data:"):
        header, comma, data = url[len("data:") :].partition(",")
        params = header.split(";")
        media_type = params[0].lower()
        if media_type not in IMAGE_MEDIA_TYPES or not comma or params[-1] != "base64":
            raise unsendable(f"{where}: a data: URL must hold a base64 JPEG, PNG, GIF or WebP")
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.startswith(("https://", "http://")):
        if not url_images:
            raise unsendable(f"{where}: this provider takes images only as base64 data: URLs")
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise unsendable(f"{where}: an image URL must be http(s) or a base64 data: URL")


def _file(file: Any, where: str) -> Message:
    """An OpenAI file part's ``file`` as a document block (a PDF, or text as a text source)
    or, for an image file, an image block; the filename is the document's title."""
    if not isinstance(file, dict):
        raise unsendable(f"{where} is a file part without a 'file' object")
    if isinstance(file.get("file_id"), str):
        raise unsendable(
            f"{where} names an OpenAI upload (file_id {file['file_id']!r}), which Anthropic "
            "cannot read; give the file itself (file_data, or a local path)"
        )
    raw = file.get("file_data")
    try:
        data_url = parse_data_url(raw) if isinstance(raw, str) else None
    except APIError as exc:  # a data URL that is not base64
        raise unsendable(f"{where}: {exc}") from None
    if data_url is None:
        raise unsendable(f"{where} needs file.file_data as a base64 data: URL, or a file_id")
    media_type, data = data_url.media_type, data_url.data
    title = file.get("filename")
    titled: Message = {"title": title} if isinstance(title, str) and title else {}
    if media_type == PDF_MEDIA_TYPE:
        source = {"type": "base64", "media_type": PDF_MEDIA_TYPE, "data": data}
        return {"type": "document", "source": source, **titled}
    if media_type.startswith("text/"):
        try:
            text = base64.b64decode(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise unsendable(f"{where}: the {media_type} file is not UTF-8 text") from None
        source = {"type": "text", "media_type": TEXT_MEDIA_TYPE, "data": text}
        return {"type": "document", "source": source, **titled}
    if media_type in IMAGE_MEDIA_TYPES:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    raise unsendable(
        f"{where}: Anthropic cannot read {media_type} files; it reads PDFs, text files and "
        "JPEG, PNG, GIF or WebP images"
    )


def _tool_use(call: Any, where: str) -> Message:
    function = named_function(call)
    if function is None:
        raise unsendable(f"{where}.tool_calls has a call without function.name")
    parsed = decoded_arguments(function.get("arguments"))
    if parsed is None or not isinstance(call.get("id"), str):
        raise unsendable(f"{where}.tool_calls needs an id and JSON object arguments in each call")
    block = {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}
    return with_cache_control(block, call, where)


def _tool_result(message: Message, where: str) -> Message:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise unsendable(f"{where} is a tool message without tool_call_id")
    block: Message = {"type": "tool_result", "tool_use_id": call_id}
    content = _blocks(message.get("content"), where, True, media=False)
    if content:
        block["content"] = content
    # A breakpoint on the tool message is one on its tool_result block.
    return with_cache_control(block, message, where)


def unsendable(reason: str) -> APIError:
    """The error for a prompt the Messages API cannot take (not retryable: it would fail again)."""
    return APIError(f"cannot send this prompt to Anthropic: {reason}")
