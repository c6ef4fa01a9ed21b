"""`Message`: one turn, a role and its parts, built fluently and written as OpenAI chat messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lm_deluge_cli.conversation.parts import File, Part, Text, Thinking, ToolCall, ToolResult
from lm_deluge_cli.images import WIRE_LIMITS, Image, ImageLimits

__all__ = ["Message", "Role"]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class Message:
    """One turn: a role and its parts. The ``add_*`` methods append and return the message.

    >>> Message.user("What is in this picture?").add_image("photo.jpg")  # doctest: +SKIP
    """

    role: Role
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def user(cls, text: str | None = None, *, image: Any = None, file: Any = None) -> Message:
        """A user message with optional text, image and file (see `add_image`, `add_file`)."""
        message = cls("user")
        if text is not None:
            message.add_text(text)
        if image is not None:
            message.add_image(image)
        if file is not None:
            message.add_file(file)
        return message

    @classmethod
    def system(cls, text: str) -> Message:
        """A system message."""
        return cls("system", [Text(text)])

    @classmethod
    def ai(cls, text: str | None = None) -> Message:
        """An assistant message (also spelled `Message.assistant`)."""
        return cls("assistant", [Text(text)] if text is not None else [])

    @classmethod
    def assistant(cls, text: str | None = None) -> Message:
        """An assistant message (also spelled `Message.ai`)."""
        return cls.ai(text)

    @classmethod
    def tool(cls, tool_call_id: str, result: Any) -> Message:
        """A tool message carrying one result; more can be added with `add_tool_result`."""
        return cls("tool", [ToolResult.of(tool_call_id, result)])

    def add_text(self, text: str) -> Message:
        """Append text."""
        self.parts.append(Text(text))
        return self

    def add_image(
        self,
        source: Any,
        *,
        media_type: str | None = None,
        detail: str | None = None,
        max_size: int | None = None,
        base_dir: str | Path | None = None,
    ) -> Message:
        """Append an image: a path, ``file:`` URL, bytes, file object, base64, data URL or
        http(s) URL. Local images are read and checked now; an http(s) URL is sent as is.

        Images are fitted to the provider's limits when the conversation is converted;
        `max_size` also scales the long side down to at most that many pixels now.
        """
        image = Image.load(source, media_type=media_type, detail=detail, base_dir=base_dir)
        if max_size is not None:
            image = image.fitted(ImageLimits(max_side=max_size))
        self.parts.append(image)
        return self

    def add_file(
        self,
        source: Any,
        *,
        media_type: str | None = None,
        filename: str | None = None,
        base_dir: str | Path | None = None,
    ) -> Message:
        """Append a file (a PDF, say) from a path, bytes, file object, base64 or data URL."""
        file = File.load(source, media_type=media_type, filename=filename, base_dir=base_dir)
        self.parts.append(file)
        return self

    def add_tool_call(self, id: str, name: str, arguments: dict[str, Any]) -> Message:
        """Append a tool call (to an assistant message)."""
        self.parts.append(ToolCall(id, name, arguments))
        return self

    def add_tool_result(self, tool_call_id: str, result: Any) -> Message:
        """Append a tool result; a result that is not a string is sent as JSON."""
        self.parts.append(ToolResult.of(tool_call_id, result))
        return self

    # The names the original library settled on, for code written against it.
    with_text = add_text
    with_image = add_image
    with_file = add_file
    with_tool_call = add_tool_call
    with_tool_result = add_tool_result

    @property
    def text(self) -> str | None:
        """The text parts joined by newlines; None when there are none."""
        texts = [part.text for part in self.parts if isinstance(part, Text)]
        return "\n".join(texts) if texts else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool call parts."""
        return [part for part in self.parts if isinstance(part, ToolCall)]

    @property
    def tool_results(self) -> list[ToolResult]:
        """The tool result parts."""
        return [part for part in self.parts if isinstance(part, ToolResult)]

    def to_openai(self, image_limits: ImageLimits = WIRE_LIMITS) -> list[dict[str, Any]]:
        """This turn as OpenAI chat messages, images fitted to `image_limits`.

        Tool results become ``tool`` messages ahead of the rest of the turn (as an Anthropic
        user turn carries them first), so one turn may give several messages. Raises
        ValueError for a turn OpenAI's format cannot hold.
        """
        results = [part.openai_message() for part in self.tool_results]
        content: list[dict[str, Any]] = []
        for part in self.parts:
            if isinstance(part, Text):
                content.append(part.openai_part())
            elif isinstance(part, Image):
                content.append(part.openai_part(image_limits))
            elif isinstance(part, File):
                content.append(part.openai_part())
        calls = [call.openai_call() for call in self.tool_calls]
        thinking = [part for part in self.parts if isinstance(part, Thinking)]
        if self.role == "tool":
            if len(results) != len(self.parts):
                raise ValueError("a tool message can only hold tool results")
            return results
        if (calls or thinking) and self.role != "assistant":
            kind = "tool calls" if calls else "reasoning"
            raise ValueError(f"a {self.role} message cannot hold {kind}")
        if not content and not calls and not thinking:
            # A turn of tool results alone; an empty turn still says something (its role).
            return results or [{"role": self.role, "content": ""}]
        message: dict[str, Any] = {"role": self.role, "content": _content(content)}
        if message["content"] is None and not calls:
            message["content"] = ""  # a turn of reasoning alone
        if calls:
            message["tool_calls"] = calls
        if thinking:
            message["reasoning"] = thinking[-1].openai_field()
        return [*results, message]


def _content(content: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    # None is what OpenAI expects beside tool_calls; a lone text part is sent as a plain
    # string, as a {"prompt": …} line is, so the two give the same Prompt (unless it carries
    # a prompt-cache breakpoint, which only a part can hold).
    if not content:
        return None
    if len(content) == 1 and content[0].keys() == {"type", "text"}:
        return str(content[0]["text"])
    return content
