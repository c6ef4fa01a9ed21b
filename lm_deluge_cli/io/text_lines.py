"""The toolkit's input lines: ``{"id": …, "text": "…"}`` and rerank's ``{"query", "documents"}``.

Like `parse_line`, these never raise: a line that cannot be used becomes a BadLine whose
reason names the line and the field. The id rule is `run`'s (``id``, else ``custom_id``,
else the line number), so resume, shards and export treat these outputs alike. Any
other keys are ignored, except ``metadata``, copied to the record untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lm_deluge_cli.io.parse import BadLine, json_object, line_id, not_json
from lm_deluge_cli.sampling import describe_value
from lm_deluge_cli.types import Keyed, id_key

__all__ = [
    "Document",
    "IdLine",
    "QueryItem",
    "TextItem",
    "parse_id_line",
    "parse_query_line",
    "parse_text_line",
]


@dataclass(frozen=True, slots=True)
class TextItem(Keyed):
    """One text to work on (embed, translate, score, extract)."""

    id: str | int
    line: int
    text: str
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class Document:
    """One document to rank: its own id (else its position in the list) and text."""

    id: str | int
    text: str


@dataclass(frozen=True, slots=True)
class QueryItem(Keyed):
    """One rerank query over its own documents."""

    id: str | int
    line: int
    query: str
    documents: tuple[Document, ...]
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class IdLine(Keyed):
    """Only what a line's id is: for status and export over any command's input."""

    id: str | int
    line: int


def _identified(line_no: int, raw: bytes | bytearray) -> tuple[dict[str, Any], str | int] | BadLine:
    """The line's object and its id, or a BadLine naming what is wrong with either."""
    obj = json_object(line_no, raw, not_json)
    if isinstance(obj, BadLine):
        return obj
    found = line_id(obj, line_no)
    if found is None:
        name = "id" if "id" in obj else "custom_id"
        return BadLine(
            line_no,
            f"line {line_no}: '{name}' must be a string or an integer, "
            f"got {describe_value(obj[name])}",
        )
    return obj, found


def _with_text(
    line_no: int, raw: bytes | bytearray, name: str
) -> tuple[dict[str, Any], str | int, str] | BadLine:
    """The line's object, its id and its `name` field (a non-empty string), or a BadLine
    naming what is wrong with any of them."""
    found = _identified(line_no, raw)
    if isinstance(found, BadLine):
        return found
    obj, id_ = found
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        return BadLine(
            line_no,
            f"line {line_no}: '{name}' must be a non-empty string, got {describe_value(value)}",
            id_,
        )
    return obj, id_, value


def parse_id_line(line_no: int, raw: bytes | bytearray) -> IdLine | BadLine:
    """Any JSON object → its id (by `run`'s rule); its other fields are not checked."""
    found = _identified(line_no, raw)
    return found if isinstance(found, BadLine) else IdLine(found[1], line_no)


def parse_text_line(line_no: int, raw: bytes | bytearray) -> TextItem | BadLine:
    """``{"id"?, "text": "…", "metadata"?}`` → a TextItem, or a BadLine naming the problem."""
    found = _with_text(line_no, raw, "text")
    if isinstance(found, BadLine):
        return found
    obj, id_, text = found
    return TextItem(id_, line_no, text, obj.get("metadata"))


def parse_query_line(line_no: int, raw: bytes | bytearray) -> QueryItem | BadLine:
    """``{"id"?, "query": "…", "documents": ["…" | {"id"?, "text"}, …]}`` → a QueryItem."""
    found = _with_text(line_no, raw, "query")
    if isinstance(found, BadLine):
        return found
    obj, id_, query = found
    raw_documents = obj.get("documents")
    if not isinstance(raw_documents, list) or not raw_documents:
        return BadLine(
            line_no,
            f"line {line_no}: 'documents' must be a non-empty list, "
            f"got {describe_value(raw_documents)}",
            id_,
        )
    documents: list[Document] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw_documents):
        where = f"line {line_no}: 'documents[{index}]'"
        if isinstance(entry, str):
            doc_id: str | int = index
            text: Any = entry
        elif isinstance(entry, dict):
            own = line_id(entry, index)
            if own is None:
                return BadLine(line_no, f"{where}.id must be a string or an integer", id_)
            doc_id, text = own, entry.get("text")
        else:
            return BadLine(
                line_no,
                f"{where} must be a string or an object with 'text', got {describe_value(entry)}",
                id_,
            )
        if not isinstance(text, str) or not text.strip():
            return BadLine(line_no, f"{where} has no text (a non-empty string)", id_)
        if id_key(doc_id) in seen:
            return BadLine(line_no, f"{where} repeats the document id {id_key(doc_id)}", id_)
        seen.add(id_key(doc_id))
        documents.append(Document(doc_id, text))
    return QueryItem(id_, line_no, query, tuple(documents), obj.get("metadata"))
