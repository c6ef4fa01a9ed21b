"""A simulated LLM provider: rate limits, failures and latency, with no I/O and no wire format.

Each request is read by its wire format (`formats/`) into neutral terms, run through the
same buckets and failure draws, and written back in that format. `server.py` puts it on a
loopback socket; tests drive it directly with a fake clock.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast

from lm_deluge_cli.mock import answers, faults, structured
from lm_deluge_cli.mock.buckets import EPSILON, Bucket
from lm_deluge_cli.mock.formats import OPENAI, Route
from lm_deluge_cli.mock.formats.base import (
    Answer,
    AnyFormat,
    CacheUsage,
    Call,
    ChatRequest,
    Dialect,
    EmbedRequest,
    FailureKind,
    PlainReply,
    Refusal,
    Reply,
    RerankRequest,
    WireFormat,
    html_page,
)
from lm_deluge_cli.mock.formats.chat import tool_tokens
from lm_deluge_cli.mock.prompt_cache import PromptCache
from lm_deluge_cli.mock.retrieval import retrieval_answer, retrieval_tokens
from lm_deluge_cli.mock.settings import MockSettings
from lm_deluge_cli.mock.wire import (
    DEFAULT_MAX_TOKENS,
    count_prompt_tokens,
    format_duration,
    mock_completion,
)

__all__ = [
    "MockSettings",
    "MockStats",
    "SimResponse",
    "Simulator",
    "format_duration",
    "mock_completion",
]

Action = Literal["respond", "drop", "hang", "reset"]
# A valid request of any kind: chat, embeddings or rerank.
_Request = ChatRequest | EmbedRequest | RerankRequest
# Faults answered with a well-formed answer that is wrong.
_WRONG_ANSWERS = ("schema_violation", "empty_answer", "invalid_tool_arguments")
# What the prompt cache did for a request that has no breakpoints: nothing.
_NO_CACHE = CacheUsage()
# The query of a URL that has none.
_NO_QUERY: Mapping[str, str] = Call._field_defaults["query"]


class SimResponse(NamedTuple):
    """The simulator's answer. ``action`` tells a server to answer, close the connection
    without answering, never answer, or send the headers and half the body and then reset
    the connection; ``delay_s`` is how long to wait first, ``body_s`` how long the body
    takes to arrive once the headers are sent. (A named tuple, as `Answer` is: one is made
    for every request.)"""

    status: int
    headers: dict[str, str]
    body: bytes
    action: Action = "respond"  # status is 0 for "drop" and "hang"
    delay_s: float = 0.0
    body_s: float = 0.0


class _Turn(NamedTuple):
    """An admitted request on its way to an answer: its format, the request, its prompt
    tokens, the rate-limit headers it is answered with and how long it waits first."""

    fmt: AnyFormat
    request: _Request
    prompt_tokens: int
    limits: dict[str, str]
    delay: float


@dataclass(frozen=True, slots=True)
class MockStats:
    """A snapshot of what the simulator has seen since it started or was last reset."""

    requests_seen: int = 0
    ok: int = 0
    rate_limited: int = 0
    errors: int = 0
    dropped: int = 0
    hung: int = 0
    # Sent a broken answer: reset mid-body, truncated JSON, an HTML page, missing fields.
    malformed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    # Texts in delivered embeddings answers; documents in delivered rerank answers.
    inputs_embedded: int = 0
    documents_ranked: int = 0
    # Prompt tokens read from and written to the prompt cache (Anthropic, Bedrock), in
    # delivered answers; the writes also by TTL.
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0


class Simulator:
    """Answers chat, embeddings and rerank requests in any wire format as the configured
    provider would.

    ``clock`` (monotonic seconds) drives the rate-limit buckets; ``wall_clock`` (seconds since
    the epoch) dates the reset times some providers send; ``rng`` the latency jitter and
    failure draws (seeded from ``settings.seed`` when not given).
    """

    def __init__(
        self,
        settings: MockSettings,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng if rng is not None else random.Random(settings.seed)
        now = clock()
        burst = settings.burst_s
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self._requests = Bucket("requests", rpm, burst, now) if rpm is not None else None
        self._tokens = Bucket("tokens", tpm, burst, now) if tpm is not None else None
        # The limits that are set: what rate-limit headers report (none: no headers).
        self._limits = tuple(b for b in (self._requests, self._tokens) if b is not None)
        self._chaos = (
            settings.drop_rate
            + settings.hang_rate
            + settings.error_rate
            + settings.overload_rate
            + sum(settings.faults.values())
        )
        # Nothing can refuse, limit or fail a request: a plain one can go the short way.
        self._quiet = settings.api_key is None and not self._limits and not self._chaos
        self._admitted = 0
        self._serial = 0
        # Ids only need to be unique, and drawing them from `rng` would shift the failure draws.
        self._nonce = secrets.token_hex(8)
        self._counts = dict.fromkeys(MockStats.__dataclass_fields__, 0)
        self._prompt_cache = PromptCache()

    def statistics(self) -> MockStats:
        """A frozen snapshot of the counters."""
        return MockStats(**self._counts)

    def reset_statistics(self) -> None:
        """Zero the counters (the rate-limit buckets are left as they are)."""
        self._counts = dict.fromkeys(self._counts, 0)

    def handle_openai_chat(self, headers: Mapping[str, str], body: bytes) -> SimResponse:
        """Answer one ``POST /v1/chat/completions``; header names are lower-case."""
        return self.handle(Route(OPENAI), headers, body)

    def handle(
        self,
        route: Route,
        headers: Mapping[str, str],
        body: bytes,
        query: Mapping[str, str] | None = None,
    ) -> SimResponse:
        """Answer one request to a provider route (see `formats.match_route`); header names
        are lower-case, ``query`` holds the URL's query parameters."""
        self._counts["requests_seen"] += 1
        self._serial += 1
        fmt = route.format
        plain = fmt.plain_chat(body) if self._quiet else None
        if plain is not None:
            response = self._plain(cast(WireFormat, fmt), plain)
        else:
            response = self._handle(fmt, Call(headers, body, route.model, query or _NO_QUERY))
        response.headers.update(fmt.request_headers(f"{self._nonce}{self._serial:016x}"))
        return response

    def _plain(self, fmt: WireFormat, request: ChatRequest) -> SimResponse:
        """What `_handle` answers a plain request (`ChatRequest.plain`) when nothing can
        refuse, limit or fail it (`_quiet`): the same answer and counts, without the steps
        that could not change them."""
        settings = self.settings
        delay = settings.latency_s
        if settings.latency_jitter_s:
            delay += self._rng.uniform(0.0, settings.latency_jitter_s)
        self._admitted += 1
        self._counts["ok"] += 1
        prompt_tokens = count_prompt_tokens(request.messages)
        answer = self._plain_answer(fmt, request, prompt_tokens)
        return SimResponse(answer.status, answer.headers, answer.body, "respond", delay)

    def _handle(self, fmt: AnyFormat, call: Call) -> SimResponse:
        counts, settings = self._counts, self.settings
        refused = fmt.authenticate(call, settings.api_key)
        if refused is not None:
            return _respond(refused)
        request = fmt.parse(call)
        if isinstance(request, Answer):
            return _respond(request)

        if isinstance(request, ChatRequest):
            prompt_tokens = count_prompt_tokens(request.messages)
            if request.tools:
                prompt_tokens += tool_tokens(request.tools)
            cost = prompt_tokens + (request.max_tokens or DEFAULT_MAX_TOKENS)
        else:
            # Embeddings and rerank produce no tokens: their input is the whole cost.
            prompt_tokens = cost = retrieval_tokens(request)
        limits: dict[str, str] = {}
        if self._limits:
            # Without limits there is nothing to pay, refuse or report.
            refusal = self._admit(cost, request.model)
            limits = self._limit_headers(fmt, refusal is not None)
            if refusal is not None:
                counts["rate_limited"] += 1
                return _respond(fmt.rate_limited(refusal), limits)

        delay = settings.latency_s
        if settings.latency_jitter_s:
            delay += self._rng.uniform(0.0, settings.latency_jitter_s)
        self._admitted += 1
        turn = _Turn(fmt, request, prompt_tokens, limits, delay)
        first_n = settings.fault_first_n
        if self._chaos and (first_n is None or self._admitted <= first_n):
            failure = self._failure(turn, self._rng.random())
            if failure is not None:
                return failure
        return self._complete(turn)

    def _answer(
        self,
        fmt: WireFormat,
        request: ChatRequest,
        prompt_tokens: int,
        ready_in: float,
        bent: answers.Faults | None,
        delivered: bool = True,
    ) -> tuple[Answer, Reply]:
        """The completion in the format (`answers.compose`, bent by a fault's `bent`), after
        the prompt cache has been read and written for an answer sent `ready_in` seconds from
        now; its tokens are counted when it will be `delivered` whole."""
        response_id = f"{self._nonce}{self._serial:013x}"
        choices = answers.compose(
            request,
            response_id,
            tool_rounds=self.settings.tool_rounds,
            # Only an answer that calls tools reads it.
            states_plan=bool(request.tools) and fmt.states_tool_plan(request),
            faults=bent,
        )
        cache = _NO_CACHE
        if request.cache_breakpoints:
            now = self._clock()
            min_tokens = self.settings.prompt_cache_min_tokens
            cache = self._prompt_cache.use(
                request.cache_breakpoints, now, now + ready_in, min_tokens
            )
        reply = Reply(choices, prompt_tokens, response_id, cache)
        if delivered:
            counts = self._counts
            counts["tokens_in"] += prompt_tokens
            counts["tokens_out"] += reply.completion_tokens
            if cache is not _NO_CACHE:
                counts["cache_read_tokens"] += cache.read
                counts["cache_write_tokens"] += cache.written
                counts["cache_write_5m_tokens"] += cache.written_5m
                counts["cache_write_1h_tokens"] += cache.written_1h
        return fmt.completion(request, reply), reply

    def _product(
        self,
        fmt: AnyFormat,
        request: _Request,
        prompt_tokens: int,
        ready_in: float,
        pad_to: int = 0,
        delivered: bool = True,
    ) -> Answer:
        """The successful answer to a request of any kind (see `_answer` for chat, whose text
        is padded to `pad_to` bytes); an embeddings or rerank body is padded to `pad_to`
        bytes with spaces, which JSON ignores, and counted when it will be `delivered`."""
        if isinstance(request, ChatRequest):
            # Only a chat format reads a chat request (and an ABC's isinstance is slow).
            chat = cast(WireFormat, fmt)
            bent = answers.Faults(pad_to=pad_to) if pad_to else None
            return self._answer(chat, request, prompt_tokens, ready_in, bent, delivered)[0]
        assert not isinstance(request, ChatRequest)
        answer = retrieval_answer(fmt, request, f"{self._nonce}{self._serial:013x}")
        if delivered:
            self._counts["tokens_in"] += prompt_tokens
            if isinstance(request, EmbedRequest):
                self._counts["inputs_embedded"] += len(request.texts)
            else:
                self._counts["documents_ranked"] += len(request.documents)
        if pad_to > len(answer.body):
            answer = answer._replace(body=answer.body + b" " * (pad_to - len(answer.body)))
        return answer

    def _complete(self, turn: _Turn) -> SimResponse:
        fmt, request, prompt_tokens, limits, delay = turn
        self._counts["ok"] += 1
        if isinstance(request, ChatRequest) and request.plain:
            answer = self._plain_answer(cast(WireFormat, fmt), request, prompt_tokens)
        else:
            answer = self._product(fmt, request, prompt_tokens, delay)
        return _respond(answer, limits, delay)

    def _plain_answer(self, fmt: WireFormat, request: ChatRequest, prompt_tokens: int) -> Answer:
        """What `_product` answers a plain request (`ChatRequest.plain`), the short way: its
        one text answer, counted and written without the choices and reply `_answer` makes."""
        text, tokens, truncated = answers.plain_text(
            request.messages, request.model, request.max_tokens
        )
        counts = self._counts
        counts["tokens_in"] += prompt_tokens
        counts["tokens_out"] += tokens
        response_id = f"{self._nonce}{self._serial:013x}"
        plain = PlainReply(text, truncated, prompt_tokens, tokens, response_id)
        return fmt.plain_completion(request, plain)

    def _failure(self, turn: _Turn, roll: float) -> SimResponse | None:
        """The failure this draw from [0, 1) lands on, if any: drop, hang, error, overload,
        then the faults in the order they are given."""
        settings = self.settings
        draws = (
            ("drop", settings.drop_rate),
            ("hang", settings.hang_rate),
            ("server_error", settings.error_rate),
            ("overloaded", settings.overload_rate),
            *settings.faults.items(),
        )
        for name, rate in draws:
            if roll < rate:
                return self._fault(name, turn)
            roll -= rate
        return None

    def _fault(self, name: str, turn: _Turn) -> SimResponse:
        """Act out one fault of `settings.faults` (see `faults` for what each one does), or
        the failure an error or overload rate draws (``"server_error"``, ``"overloaded"``)."""
        counts, settings = self._counts, self.settings
        fmt, request, prompt_tokens, limits, delay = turn
        if name in ("server_error", "overloaded"):
            counts["errors"] += 1
            return _respond(fmt.failure(cast(FailureKind, name)), limits, delay)
        status = faults.fault_status(name)
        if status == 429:
            counts["rate_limited"] += 1
            limit = settings.requests_per_minute or 60.0
            wait = faults.FAULT_RETRY_AFTER_S
            refusal = Refusal(
                "requests", request.model, limit, limit, 1, wait, settings.retry_after
            )
            return _respond(fmt.rate_limited(refusal), limits, delay)
        if status is not None:
            counts["errors"] += 1
            return _respond(fmt.status_failure(status), limits, delay)
        if name == "drop":
            counts["dropped"] += 1
            return SimResponse(0, {}, b"", "drop", delay)
        if name == "hang":
            counts["hung"] += 1
            return SimResponse(0, {}, b"", "hang", delay)
        if name in ("slow_body", "huge_body"):
            # Correct answers, delivered the hard way.
            counts["ok"] += 1
            pad = settings.huge_body_bytes if name == "huge_body" else 0
            body_s = settings.slow_body_s if name == "slow_body" else 0.0
            answer = self._product(fmt, request, prompt_tokens, delay + body_s, pad_to=pad)
            response = _respond(answer, limits, delay)
            return response._replace(body_s=body_s)
        if name in _WRONG_ANSWERS:
            return self._wrong_answer(name, turn)
        counts["malformed"] += 1
        if name == "html":
            page = html_page(200, "Just a moment...")
            return _respond(page, limits, delay)
        answer = self._product(fmt, request, prompt_tokens, delay, delivered=False)
        if name == "reset_mid_body":
            return _respond(answer, limits, delay)._replace(action="reset")
        if name == "truncated_json":
            return _respond(faults.truncated(answer), limits, delay)
        return _respond(faults.strip_fields(answer, fmt.answer_fields), limits, delay)

    def _wrong_answer(self, name: str, turn: _Turn) -> SimResponse:
        """A well-formed answer that is wrong (a fault of `_WRONG_ANSWERS`), counted as
        malformed; a request it cannot break (see `faults`) is answered normally."""
        fmt, request, prompt_tokens, limits, delay = turn
        if not isinstance(request, ChatRequest) or not isinstance(fmt, WireFormat):
            self._counts["ok"] += 1
            return _respond(self._product(fmt, request, prompt_tokens, delay), limits, delay)
        bent = answers.Faults(
            violate=name == "schema_violation" and structured.asks_for_json(request),
            empty=name == "empty_answer",
            break_arguments=name == "invalid_tool_arguments" and fmt.string_arguments,
        )
        answer, reply = self._answer(fmt, request, prompt_tokens, delay, bent)
        broken = bent.violate or bent.empty
        if bent.break_arguments:
            broken = any(choice.tool_calls for choice in reply.choices)
        self._counts["malformed" if broken else "ok"] += 1
        return _respond(answer, limits, delay)

    def _admit(self, cost: int, model: str) -> Refusal | None:
        """Pay for a request from both buckets, or say why it is refused."""
        requests, tokens = self._requests, self._tokens
        if requests is None and tokens is None:
            return None
        now = self._clock()
        for bucket in (requests, tokens):
            if bucket is not None:
                bucket.refill(now)
        advertise = self.settings.retry_after
        if tokens is not None and cost > tokens.per_minute:
            if self.settings.charge_refusals:
                self._charge(cost)
            limit = tokens.per_minute
            return Refusal("tokens", model, limit, 0.0, cost, None, advertise)
        wait_requests = requests.wait_s(1) if requests is not None else 0.0
        wait_tokens = tokens.wait_s(cost) if tokens is not None else 0.0
        if wait_requests <= EPSILON and wait_tokens <= EPSILON:
            self._charge(cost)
            return None
        if wait_requests > EPSILON and requests is not None:
            bucket, requested = requests, 1
        else:
            assert tokens is not None
            bucket, requested = tokens, cost
        # The share of the bucket spent, in per-minute units: with burst_s=60 this is exactly
        # what the last minute used.
        used = bucket.per_minute * (bucket.capacity - bucket.level) / bucket.capacity
        if self.settings.charge_refusals:
            self._charge(cost)
        # Measured after any charge, so the advertised wait is one that would really work.
        wait = max(
            requests.wait_s(1) if requests is not None else 0.0,
            tokens.wait_s(cost) if tokens is not None else 0.0,
        )
        return Refusal(bucket.kind, model, bucket.per_minute, used, requested, wait, advertise)

    def _charge(self, cost: int) -> None:
        if self._requests is not None:
            self._requests.charge(1)
        if self._tokens is not None:
            self._tokens.charge(cost)

    def _limit_headers(self, fmt: Dialect, refused: bool) -> dict[str, str]:
        if not self._limits or not self.settings.rate_limit_headers:
            return {}
        states = [bucket.state() for bucket in self._limits]
        return fmt.limit_headers(states, self._wall_clock(), refused)


def _respond(
    answer: Answer, first: Mapping[str, str] | None = None, delay: float = 0.0
) -> SimResponse:
    """A response from a format's answer, after the rate-limit headers that come first."""
    headers = {**first, **answer.headers} if first else {**answer.headers}
    return SimResponse(answer.status, headers, answer.body, "respond", delay)
