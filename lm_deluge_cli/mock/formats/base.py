"""The contract between the simulator and one wire format: what a request asks, in neutral
terms (`formats.chat` for chat, below for embeddings and rerank), and how each outcome the
simulator decides on is written back in the format's own way.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import orjson

from lm_deluge_cli.mock.formats.chat import (
    Breakpoint,
    CacheUsage,
    ChatRequest,
    Choice,
    PlainReply,
    Reply,
    ToolChoice,
    ToolMode,
    ToolSpec,
    ToolUse,
)

__all__ = [
    "INT_HOLE",
    "JSON",
    "JSON_HOLE",
    "Answer",
    "AnyFormat",
    "Breakpoint",
    "CacheUsage",
    "Call",
    "ChatRequest",
    "Choice",
    "Dialect",
    "EmbedFormat",
    "EmbedRequest",
    "Embeddings",
    "FailureKind",
    "LimitKind",
    "LimitState",
    "PlainReply",
    "Ranking",
    "Refusal",
    "Reply",
    "RerankFormat",
    "RerankRequest",
    "StatusFailures",
    "ToolChoice",
    "ToolMode",
    "ToolSpec",
    "ToolUse",
    "WireFormat",
    "as_uuid",
    "bearer_matches",
    "gateway_page",
    "html_page",
    "json_answer",
    "json_template",
    "keys_match",
    "load_json_object",
    "number_text",
    "opaque_signature",
    "reason_phrase",
    "rfc3339",
    "short_id",
    "whole_seconds",
]

JSON: Mapping[str, str] = {"content-type": "application/json"}

LimitKind = Literal["requests", "tokens"]
FailureKind = Literal["server_error", "overloaded"]
# Letters and digits, for the ids providers write in base 62.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Answer(NamedTuple):
    """An HTTP answer: status, headers (lower-case names) and body. The headers are a dict
    of its own, made for this answer: the simulator adds to them."""

    status: int
    headers: dict[str, str]
    body: bytes


class Call(NamedTuple):
    """One request as a format reads it: headers (lower-case names), body, and what the URL
    says: the model some APIs name in the path, and the query parameters. (A named tuple:
    one is made for every request, and a tuple is quicker to make than a frozen class.)"""

    headers: Mapping[str, str]
    body: bytes
    path_model: str | None = None
    # Shared by every call that names none: read-only.
    query: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LimitState:
    """One rate limit as it stands after a request: what rate-limit headers report."""

    kind: LimitKind
    per_minute: float
    remaining: int
    reset_s: float  # seconds until the bucket is full again


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused with a 429.

    ``wait_s`` is how long until it would be admitted, or None when no wait can help (it
    costs more than a minute of the limit). ``advertise`` is false when the settings say not
    to send the wait. ``used`` is the share of the limit spent, in per-minute units.
    """

    kind: LimitKind
    model: str
    limit: float
    used: float
    requested: int
    wait_s: float | None
    advertise: bool


class StatusFailures(ABC):
    """How an API answers an injected error status: the page of the gateway in front of it
    for a status the gateway answers, its internal error (500) or overload answer
    (`failure`) for theirs, else its own error for the status (`status_error`)."""

    # The statuses the gateway in front of the API answers with its page (`gateway_page`).
    gateway_statuses: ClassVar[tuple[int, ...]] = ()
    # The status of the API's overload answer; None: an overload is not one of its statuses.
    overload_status: ClassVar[int | None] = None

    @abstractmethod
    def failure(self, kind: FailureKind) -> Answer:
        """An injected internal error or overload."""

    @abstractmethod
    def status_error(self, status: int) -> Answer:
        """The API's own error for an injected status that is not its internal error,
        overload or gateway's."""

    def status_failure(self, status: int) -> Answer:
        """An injected error with this HTTP status (400 to 599 but 429), in the provider's
        own error format, or the page its gateway sends for that status."""
        if status in self.gateway_statuses:
            return gateway_page(status)
        if status == 500:
            return self.failure("server_error")
        if status == self.overload_status:
            return self.failure("overloaded")
        return self.status_error(status)


class WireFormat(StatusFailures):
    """One provider API: reads its requests and writes the simulator's decisions in it.

    The simulator calls, in order: `authenticate`, `parse`, then one of `completion`,
    `rate_limited`, `failure` or `status_failure`; `limit_headers` and `request_headers` are
    added around them.
    """

    name: ClassVar[str]
    # The top-level fields of a completion that carry the answer: a ``missing_fields``
    # fault leaves them out.
    answer_fields: ClassVar[tuple[str, ...]]
    # Tool-call arguments travel as a JSON string (which can be broken), not as an object.
    string_arguments: ClassVar[bool] = False

    @abstractmethod
    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        """The refusal for a missing or wrong credential, or None to go on.

        ``api_key`` is the key the mock expects (None: any or none is accepted).
        """

    @abstractmethod
    def parse(self, call: Call) -> ChatRequest | Answer:
        """The request in neutral terms, or the error the provider sends for a bad one."""

    @abstractmethod
    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        """The successful response."""

    @abstractmethod
    def rate_limited(self, refusal: Refusal) -> Answer:
        """The 429 (or the provider's equivalent) for a refused request."""

    def plain_chat(self, body: bytes) -> ChatRequest | None:
        """The body read the short way when it is a plain request (`ChatRequest.plain`) that
        `parse` would read as this one; None for any other body, and by default (a format
        without a short way: `parse` reads every body). The simulator asks only when it
        expects no key, so a format whose `authenticate` refuses requests even then
        (Bedrock's signature) must not have a short way."""
        return None

    def plain_completion(self, request: ChatRequest, plain: PlainReply) -> Answer:
        """The successful response to a plain request (`ChatRequest.plain`) whose one answer
        is `plain`: what `completion` writes for it, and by default `completion` writes it. A
        format may write it more quickly."""
        choice = Choice(plain.text, plain.completion_tokens, plain.truncated)
        return self.completion(request, Reply((choice,), plain.prompt_tokens, plain.response_id))

    def states_tool_plan(self, request: ChatRequest) -> bool:
        """Whether an answer that calls tools first says what it is about to do (Anthropic's
        text block, Cohere's tool_plan; the plan counts as output). No, by default."""
        return False

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        """Rate-limit headers for the limits that are set; ``now`` is the wall clock (epoch
        seconds). Providers that send none return nothing, the default."""
        return {}

    def request_headers(self, request_id: str) -> dict[str, str]:
        """Headers that name the request (``request_id`` is unique hex); none by default."""
        return {}


def json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """A JSON answer with the content type set."""
    return Answer(status, {**(headers or {}), **JSON}, orjson.dumps(payload))


# Where a `json_template` is filled in: with an int, or with a value already written as JSON.
# A hole is written as a NUL byte before its formatting code (orjson writes a NUL in a
# string as ``\u0000``, so a NUL in its output is always a hole's).
INT_HOLE = orjson.Fragment(b"\x00d")
JSON_HOLE = orjson.Fragment(b"\x00b")


def json_template(payload: Any) -> bytes:
    """`payload` written once, for a body whose shape never changes: where it holds
    `INT_HOLE` or `JSON_HOLE`, ``template % (values, ...)`` puts the values in the order
    the holes are written (ints, and what ``orjson.dumps`` writes for the other values),
    which gives the bytes ``orjson.dumps`` gives for the payload with the values in place,
    without building the payload for every answer."""
    return orjson.dumps(payload).replace(b"%", b"%%").replace(b"\x00", b"%")


def load_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def keys_match(presented: str, expected: str) -> bool:
    """Compare keys in constant time, so response timing says nothing about the key."""
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def bearer_matches(headers: Mapping[str, str], expected: str) -> bool:
    """True when ``authorization`` is ``Bearer <expected>`` (the scheme in any case)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and keys_match(token, expected)


def number_text(value: float) -> str:
    """A limit as headers and messages print it: ``60``, not ``60.0``; ``0.5`` as is."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def whole_seconds(wait_s: float) -> int:
    """A wait as the providers' ``retry-after`` and retry delays state it: in whole seconds,
    rounded up, at least one."""
    return max(1, math.ceil(wait_s))


def rfc3339(epoch_s: float) -> str:
    """A UTC time in whole seconds, rounded up (``2025-08-21T12:40:59Z``): a reset time
    that waiting for is always enough."""
    moment = datetime.datetime.fromtimestamp(math.ceil(epoch_s), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def as_uuid(hex_id: str) -> str:
    """32 hex digits (padded or cut) in the 8-4-4-4-12 form some providers use for ids."""
    digits = hex_id[-32:].rjust(32, "0")
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def opaque_signature(text: str, length: int = 96) -> str:
    """An opaque base64 string of `length` bytes derived from `text`: the signature providers
    attach to reasoning so it can be sent back (the same thinking, the same signature)."""
    digest = hashlib.shake_256(b"signature\x00" + text.encode()).digest(length)
    return base64.b64encode(digest).decode()


def short_id(hex_id: str, length: int) -> str:
    """`length` letters and digits from a hex id (its low digits), as providers write ids in
    base 62 (``toolu_01…``, Mistral's 9-character tool call ids)."""
    number = int(hex_id, 16) if hex_id else 0
    digits = []
    for _ in range(length):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits))


def reason_phrase(status: int) -> str:
    """``Bad Gateway`` for 502; 529 is Anthropic's ``Overloaded``."""
    if status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def html_page(status: int, title: str, server: str = "cloudflare") -> Answer:
    """An HTML page, as a gateway, a bot check or a captive portal sends instead of JSON."""
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>{server}</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Answer(status, {"content-type": "text/html"}, body.encode())


def gateway_page(status: int, server: str = "cloudflare") -> Answer:
    """The HTML error page a load balancer in front of the API sends for a 502 or 504."""
    return html_page(status, f"{status} {reason_phrase(status)}", server)


# --- embeddings and rerank ---------------------------------------------------------------


class Dialect(Protocol):
    """How one provider refuses, limits and fails, whatever kind of request it is answering:
    the part of a `WireFormat` its embedding and rerank endpoints share with its chat."""

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None: ...

    def rate_limited(self, refusal: Refusal) -> Answer: ...

    def failure(self, kind: FailureKind) -> Answer: ...

    def status_failure(self, status: int) -> Answer: ...

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]: ...

    def request_headers(self, request_id: str) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """A valid embeddings request in neutral terms: the texts in order, and the vector size
    to answer with (the request's, else the mock's default)."""

    model: str
    texts: list[str]
    dimensions: int
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Embeddings:
    """The simulator's answer to an admitted embeddings request: one unit vector per text."""

    vectors: list[list[float]]
    tokens: int  # the texts' tokens, as the mock counts them
    response_id: str  # unique hex, for the format's own id scheme


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """A valid rerank request in neutral terms; ``top_n`` None means every document."""

    model: str
    query: str
    documents: list[str]
    top_n: int | None
    return_documents: bool
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ranking:
    """The simulator's answer to an admitted rerank request: ``(index, relevance score)``
    pairs, most relevant first, already cut to the request's ``top_n``."""

    results: list[tuple[int, float]]
    tokens: int  # query tokens per document plus the documents' tokens
    response_id: str


class _Endpoint(ABC):
    """An endpoint beside a provider's chat API: it reads and writes its own bodies and
    leaves authentication, refusals and failures to the provider's `Dialect`."""

    name: ClassVar[str]
    # The top-level fields that carry the answer: a ``missing_fields`` fault leaves them out.
    answer_fields: ClassVar[tuple[str, ...]]

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def plain_chat(self, body: bytes) -> None:
        """Not a chat request (see `WireFormat.plain_chat`)."""
        return None

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        return self.dialect.authenticate(call, api_key)

    def rate_limited(self, refusal: Refusal) -> Answer:
        return self.dialect.rate_limited(refusal)

    def failure(self, kind: FailureKind) -> Answer:
        return self.dialect.failure(kind)

    def status_failure(self, status: int) -> Answer:
        return self.dialect.status_failure(status)

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        return self.dialect.limit_headers(limits, now, refused)

    def request_headers(self, request_id: str) -> dict[str, str]:
        return self.dialect.request_headers(request_id)


class EmbedFormat(_Endpoint):
    """One provider's embeddings API: reads its requests and writes its vectors."""

    @abstractmethod
    def parse(self, call: Call) -> EmbedRequest | Answer:
        """The request in neutral terms, or the error the provider sends for a bad one."""

    @abstractmethod
    def embeddings(self, request: EmbedRequest, reply: Embeddings) -> Answer:
        """The successful response."""


class RerankFormat(_Endpoint):
    """One provider's rerank API: reads its requests and writes its rankings."""

    @abstractmethod
    def parse(self, call: Call) -> RerankRequest | Answer:
        """The request in neutral terms, or the error the provider sends for a bad one."""

    @abstractmethod
    def ranking(self, request: RerankRequest, reply: Ranking) -> Answer:
        """The successful response."""


# Whatever a route can reach: a chat API, an embeddings API or a rerank API.
AnyFormat = WireFormat | EmbedFormat | RerankFormat
