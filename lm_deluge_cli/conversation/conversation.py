"""`Conversation`: an ordered list of messages, built fluently and converted between formats."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec

import orjson

from lm_deluge_cli.conversation.convert import anthropic_messages, openai_messages
from lm_deluge_cli.conversation.local_files import BaseDir
from lm_deluge_cli.conversation.message import Message
from lm_deluge_cli.conversation.parts import Thinking
from lm_deluge_cli.images import PROVIDER_LIMITS, WIRE_LIMITS, ImageLimits, provider_family
from lm_deluge_cli.results import Answer, Result
from lm_deluge_cli.tokens import estimate_message_tokens

__all__ = ["Conversation"]

P = ParamSpec("P")


class _builder(Generic[P]):  # lower-case: a decorator, like classmethod
    """A method that appends to a conversation and returns it; called on the class itself it
    starts a new one, so ``Conversation.system("…").user("…")`` reads as it should."""

    def __init__(self, method: Callable[Concatenate[Conversation, P], Conversation]) -> None:
        self.method = method
        self.__doc__ = method.__doc__

    def __get__(
        self, conversation: Conversation | None, owner: type[Conversation]
    ) -> Callable[P, Conversation]:
        def bound(*args: P.args, **kwargs: P.kwargs) -> Conversation:
            target = conversation if conversation is not None else owner()
            return self.method(target, *args, **kwargs)

        bound.__doc__ = self.__doc__
        return bound


@dataclass(slots=True)
class Conversation:
    """Messages in order. Build one fluently, or read one from OpenAI or Anthropic messages:

    >>> Conversation.system("Be brief.").add(Message.user("What is this?").add_image("cat.jpg"))
    ... # doctest: +SKIP

    `to_openai()` is exactly what a Prompt holds (the engine's wire); `to_anthropic()` and
    `to_gemini()` run those messages through the adapters' own translation, so they show
    what would be sent, with images fitted to that provider's limits.
    """

    messages: list[Message] = field(default_factory=list)

    @_builder
    def system(self, text: str) -> Conversation:
        """Append a system message."""
        self.messages.append(Message.system(text))
        return self

    @_builder
    def user(self, text: str | None = None, *, image: Any = None, file: Any = None) -> Conversation:
        """Append a user message with optional text, image and file."""
        self.messages.append(Message.user(text, image=image, file=file))
        return self

    @_builder
    def ai(self, text: str | None = None) -> Conversation:
        """Append an assistant message."""
        self.messages.append(Message.ai(text))
        return self

    @_builder
    def assistant(self, text: str | None = None) -> Conversation:
        """Append an assistant message (the same as `ai`)."""
        self.messages.append(Message.ai(text))
        return self

    @_builder
    def add(self, message: Message) -> Conversation:
        """Append a message."""
        self.messages.append(message)
        return self

    @_builder
    def with_message(self, message: Message) -> Conversation:
        """Append a message (the original library's name for `add`)."""
        self.messages.append(message)
        return self

    @_builder
    def with_response(self, response: Result | Answer) -> Conversation:
        """Append the assistant turn a result (or one of its answers) holds: its text (a
        refusal's message when it has no text), its tool calls, and the reasoning parts its
        provider needs to continue; answer its tool calls with `with_tool_result`.

        Raises ValueError for a result that failed (there is no answer to append).
        """
        answer = response.answer if isinstance(response, Result) else response
        if answer is None:
            raise ValueError("the result is an error: it holds no answer to continue from")
        message = Message("assistant")
        text = answer.text or (answer.refusal if not answer.tool_calls else None)
        if text:
            message.add_text(text)
        for call in answer.tool_calls:
            # Arguments that were not JSON go back as none: the tool's result says why.
            message.add_tool_call(call.id, call.name, call.arguments or {})
        if answer.reasoning is not None and (answer.reasoning.parts or answer.reasoning.text):
            message.parts.append(Thinking(answer.reasoning.text, answer.reasoning.parts))
        self.messages.append(message)
        return self

    @_builder
    def with_tool_result(self, tool_call_id: str, result: Any) -> Conversation:
        """Append a tool result, to the last message when it is a tool message (parallel
        calls), else in a new one; a result that is not a string is sent as JSON."""
        if self.messages and self.messages[-1].role == "tool":
            self.messages[-1].add_tool_result(tool_call_id, result)
        else:
            self.messages.append(Message.tool(tool_call_id, result))
        return self

    def to_openai(self, image_limits: ImageLimits = WIRE_LIMITS) -> list[dict[str, Any]]:
        """OpenAI chat messages, images fitted to `image_limits`: what a Prompt holds.

        Raises ValueError for a message OpenAI's format cannot hold, MediaError for an image
        that cannot be decoded.
        """
        return [out for message in self.messages for out in message.to_openai(image_limits)]

    def to_anthropic(self) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
        """(system prompt, Messages API ``messages``), images fitted to Anthropic's limits; the
        system prompt is a list of text blocks when one of them is a prompt-cache breakpoint.

        Raises `APIError` for what the Anthropic adapter cannot send.
        """
        # The adapter is loaded when a conversion to its format is asked for, not by every
        # reader of a conversation (reading input loads no adapter: pyproject's contracts).
        from lm_deluge_cli.providers.anthropic_messages import translate_messages

        return translate_messages(self.to_openai(PROVIDER_LIMITS["anthropic"]))

    def to_gemini(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(``systemInstruction`` or None, ``contents``) of a generateContent body, images
        fitted to Gemini's limits. Raises `APIError` for what the adapter cannot send."""
        from lm_deluge_cli.providers.gemini import gemini_contents

        system, contents = gemini_contents(self.to_openai(PROVIDER_LIMITS["gemini"]))
        return ({"parts": system} if system else None), contents

    def count_tokens(self, provider: str = "openai") -> int:
        """Estimated input tokens at `provider` ("openai", "anthropic", "gemini", …)."""
        limits = PROVIDER_LIMITS[provider_family(provider)]
        return estimate_message_tokens(self.to_openai(limits), provider=provider)

    @property
    def fingerprint(self) -> str:
        """Hex sha256 of the wire messages: equal conversations, equal fingerprints."""
        wire = orjson.dumps(self.to_openai(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(wire).hexdigest()

    @classmethod
    def from_openai(cls, messages: Iterable[Any], *, base_dir: BaseDir = None) -> Conversation:
        """From OpenAI chat messages. Local media parts (``{"type": "image", "path": …}``,
        ``file:`` URLs) are read relative to `base_dir`. Raises ConversionError naming the
        message and part (and the file, for one that cannot be read)."""
        return cls(openai_messages(messages, base_dir))

    @classmethod
    def from_anthropic(
        cls,
        messages: Iterable[Any],
        system: str | list[Any] | None = None,
        *,
        base_dir: BaseDir = None,
    ) -> Conversation:
        """From Anthropic Messages API ``messages`` (and its ``system``). Thinking blocks are
        dropped; a user turn's tool_result blocks become tool results. Raises ConversionError
        naming the message and block."""
        return cls(anthropic_messages(messages, system, base_dir))
