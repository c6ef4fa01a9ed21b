"""Build prompts from text, images, files and tool calls, and convert them between the OpenAI,
Anthropic and Gemini message formats.

>>> from lm_deluge_cli import Conversation, Message
>>> Conversation.system("Be brief.").add(Message.user("What is this?").add_image("cat.jpg"))
... # doctest: +SKIP

`parts` holds the part types, `message` the `Message` turn, `conversation` the
`Conversation`, and `convert` the readers of other formats (and of local media parts).
"""

from lm_deluge_cli.conversation.conversation import Conversation
from lm_deluge_cli.conversation.message import Message, Role
from lm_deluge_cli.conversation.parts import (
    ConversionError,
    File,
    Image,
    Part,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from lm_deluge_cli.images import MediaError

__all__ = [
    "Conversation",
    "ConversionError",
    "File",
    "Image",
    "MediaError",
    "Message",
    "Part",
    "Role",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolResult",
]
