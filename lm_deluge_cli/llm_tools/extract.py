"""`extract`: text, images or files → a JSON object matching a schema.

The schema goes in ``sampling.json_schema``, so each provider's own structured output is
used and the engine checks every answer (a non-conforming one is retried, and when the
attempts run out the record is a ``schema_mismatch`` error naming the rule it broke). The
prompt carries the schema too, for models that take no json_schema (the engine leaves it
out for them, with a warning) and for the descriptions a schema's fields may hold.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import orjson

from lm_deluge_cli.client import LLMClient
from lm_deluge_cli.conversation import Conversation
from lm_deluge_cli.engine.task import Answered, LineParser
from lm_deluge_cli.errors import SchemaValidationError
from lm_deluge_cli.io.parse import BadLine, parse_line
from lm_deluge_cli.io.text_lines import TextItem, parse_text_line
from lm_deluge_cli.llm_tools.batch import ToolRun
from lm_deluge_cli.llm_tools.schemas import schema_of
from lm_deluge_cli.results import ErrorInfo, Result
from lm_deluge_cli.types import Message, Prompt

__all__ = ["SCHEMA_MISMATCH", "ExtractTask", "extract", "extract_async", "extraction_prompt"]

# The error type of an answer that never matched the schema (the engine's).
SCHEMA_MISMATCH = SchemaValidationError.type
# A line with any of these is a `run` line (a prompt, messages, a Batch API request).
_RUN_KEYS = ("prompt", "messages", "body")
_PDF = (".pdf",)


def extraction_prompt(
    schema: Mapping[str, Any],
    *,
    document_name: str = "text",
    object_name: str | None = None,
    text: str | None = None,
) -> str:
    """The instructions: the `text` quoted below them, or (None) about the content above."""
    what = f"{object_name} information" if object_name else "information"
    where = "below" if text is not None else "above"
    prompt = (
        f"Extract the {what} from the {document_name} {where} as one JSON object that "
        f"matches this JSON schema:\n{orjson.dumps(dict(schema)).decode()}\n"
        "Reply with the JSON object only, no explanation."
    )
    if text is not None:
        prompt += f'\n\n{document_name.capitalize()}:\n"""\n{text}\n"""'
    return prompt


class ExtractTask:
    """A `Task` for `run_job`: ``{"id", "text"}`` lines and any line `run` takes; each ok
    record gets ``data`` (the parsed object), error records ``data: null``."""

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        document_name: str | None = None,
        object_name: str | None = None,
    ) -> None:
        self.schema = dict(schema)
        self.document_name = document_name
        self.object_name = object_name
        # What a line that brings its own content (images, files, messages) gets appended.
        self._attached = extraction_prompt(
            self.schema, document_name=document_name or "input", object_name=object_name
        )

    def parser(self, base_dir: Path | None, files_root: Path | None) -> LineParser:
        def parse(line_no: int, raw: bytes | bytearray) -> TextItem | Prompt | BadLine:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                obj = None  # parse_line names the problem
            if isinstance(obj, dict) and "text" in obj and not any(k in obj for k in _RUN_KEYS):
                return parse_text_line(line_no, raw)
            return parse_line(line_no, raw, base_dir=base_dir, files_root=files_root)

        return parse

    def prepare(self, item: Any) -> Prompt | Answered | BadLine:
        sampling = {"json_schema": self.schema}
        if isinstance(item, TextItem):
            text = extraction_prompt(
                self.schema,
                document_name=self.document_name or "text",
                object_name=self.object_name,
                text=item.text,
            )
            return Prompt(
                id=item.id,
                line=item.line,
                messages=[{"role": "user", "content": text}],
                metadata=item.metadata,
                sampling=sampling,
            )
        prompt: Prompt = item
        return Prompt(
            id=prompt.id,
            line=prompt.line,
            messages=_with_instructions(prompt.messages, self._attached),
            model=prompt.model,
            metadata=prompt.metadata,
            sampling={**prompt.sampling, **sampling},
            extra_body=prompt.extra_body,
        )

    def finish(self, record: Result) -> Result:
        if "data" in record.fields:
            return record
        data = None
        if record.ok:
            try:
                data = orjson.loads(record.completion or "")
            except orjson.JSONDecodeError:
                # Never expected (the engine checked the answer), but never an ok without data.
                error = ErrorInfo(SCHEMA_MISMATCH, "the answer is not valid JSON")
                return record.replace(status="error", error=error, fields=_with(record, None))
        return record.replace(fields=_with(record, data))


def _with(record: Result, data: Any) -> dict[str, Any]:
    return {**record.fields, "data": data}


def _with_instructions(messages: list[Message], instructions: str) -> list[Message]:
    """The messages with `instructions` added to the last user message (a new one if none)."""
    messages = list(messages)
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            content = f"{content}\n\n{instructions}"
        else:
            content = [*(content or []), {"type": "text", "text": instructions}]
        messages[index] = {**message, "content": content}
        return messages
    return [*messages, {"role": "user", "content": instructions}]


def _line(item: Any) -> dict[str, Any]:
    """An extract input as the input line it would be in a file."""
    if isinstance(item, str):
        return {"text": item}
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, Conversation):
        return {"messages": item.to_openai()}
    if isinstance(item, list):
        return {"messages": item}
    conversation = Conversation()
    if isinstance(item, Path):
        if item.suffix.lower() in _PDF:
            return {"messages": conversation.user(file=item).to_openai()}
        return {"messages": conversation.user(image=item).to_openai()}
    if isinstance(item, bytes | bytearray):
        return {"messages": conversation.user(image=bytes(item)).to_openai()}
    if hasattr(item, "save") and hasattr(item, "mode"):  # a PIL image, duck-typed
        buffer = io.BytesIO()
        item.save(buffer, format="PNG")
        return {"messages": conversation.user(image=buffer.getvalue()).to_openai()}
    raise TypeError(
        "extract inputs are strings, dicts shaped like input lines, Conversations, message "
        f"lists, image paths or bytes, or PIL images; got {type(item).__name__}"
    )


async def extract_async(
    inputs: Sequence[Any],
    schema: Any,
    *,
    model: str | Sequence[str] | None = None,
    client: LLMClient | None = None,
    document_name: str | None = None,
    object_name: str | None = None,
    show_progress: bool = False,
    return_prompts: bool = False,
    return_records: bool = False,
    **client_options: Any,
) -> list[Any]:
    """Extract `schema` from each input, in input order: the parsed object (an instance of
    `schema` when it is a pydantic model class), or None where it failed.

    `inputs`: strings, Conversations, message lists, dicts shaped like input lines, image
    paths or bytes (a ``.pdf`` path is attached as a file), PIL images. `schema`: a pydantic
    model class or a JSON Schema dict. Give `model` (with any LLMClient keyword arguments:
    limits, ``sampling_params``, ``cache`` …) or a `client`. ``return_records=True`` gives
    the full records (`run`'s fields plus ``data``); ``return_prompts=True`` sends nothing
    and gives the prompts that would be sent.
    """
    checked, model_class = schema_of(schema)
    task = ExtractTask(checked, document_name=document_name, object_name=object_name)
    lines = [_line(item) for item in inputs]
    run = ToolRun(model, client, client_options, show_progress, return_prompts, return_records)
    return await run.give(task, lines, lambda results: [_value(r, model_class) for r in results])


def extract(inputs: Sequence[Any], schema: Any, **kwargs: Any) -> list[Any]:
    """`extract_async` for code that is not async (same arguments)."""
    return anyio.run(functools.partial(extract_async, inputs, schema, **kwargs))


def _value(result: Result, model_class: Any) -> Any:
    data = result.fields.get("data")
    if not result.ok or data is None:
        return None
    validate = getattr(model_class, "model_validate", None)
    if validate is None:  # a dict schema, or a class that only gives its schema
        return data
    try:
        return validate(data)
    except ValueError:  # pydantic's ValidationError: constraints our checker does not know
        return None
