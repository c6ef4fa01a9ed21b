"""How Voyage AI and Jina AI refuse and fail: the providers the mock serves only for
embeddings and rerank, so they have no chat `WireFormat` to borrow it from.

Both are FastAPI services: Bearer keys, and errors as ``{"detail": "<message>"}`` (what the
``voyageai`` client reads). Neither documents rate-limit headers; a 429 carries
``retry-after`` (whole seconds), which the ``voyageai`` client reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    FailureKind,
    LimitState,
    Refusal,
    StatusFailures,
    bearer_matches,
    json_answer,
    number_text,
    reason_phrase,
    whole_seconds,
)

__all__ = ["JinaDialect", "VoyageDialect", "detail_error"]


def detail_error(status: int, message: str) -> Answer:
    """FastAPI's error body: ``{"detail": message}``."""
    return json_answer(status, {"detail": message})


class _DetailDialect(StatusFailures):
    """Bearer keys and ``{"detail": …}`` errors; the messages are the provider's."""

    name: ClassVar[str]
    no_key: ClassVar[str]
    bad_key: ClassVar[str]
    gateway_statuses = (502, 504)
    overload_status = 503

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None or bearer_matches(call.headers, api_key):
            return None
        # The presented key is never echoed, not even masked: logs must stay clean.
        return detail_error(401, self.bad_key if call.headers.get("authorization") else self.no_key)

    def rate_limited(self, refusal: Refusal) -> Answer:
        label = "RPM" if refusal.kind == "requests" else "TPM"
        limit = number_text(refusal.limit)
        if refusal.wait_s is None:
            message = f"The request needs {refusal.requested} tokens, more than your {label} "
            message += f"limit of {limit}. Please split it into smaller requests."
            return detail_error(429, message)
        message = f"You have exceeded your {label} limit of {limit}. Please slow down and "
        message += "try again later."
        answer = detail_error(429, message)
        if refusal.advertise:
            answer.headers["retry-after"] = str(whole_seconds(refusal.wait_s))
        return answer

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            return detail_error(503, "The service is temporarily overloaded. Please retry later.")
        return detail_error(500, "An unexpected error occurred on the server. Please retry.")

    def status_error(self, status: int) -> Answer:
        return detail_error(status, f"{reason_phrase(status)}.")

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        return {}

    def request_headers(self, request_id: str) -> dict[str, str]:
        return {}


class VoyageDialect(_DetailDialect):
    """Voyage AI (``api.voyageai.com/v1``)."""

    name = "voyage"
    no_key = "No API key provided. Set the Authorization header to 'Bearer <your Voyage API key>'."
    bad_key = "Provided API key is invalid."


class JinaDialect(_DetailDialect):
    """Jina AI (``api.jina.ai/v1``)."""

    name = "jina"
    no_key = "Missing API key. Set the Authorization header to 'Bearer <your Jina API key>'."
    bad_key = "Invalid API key. Please get a new one at https://jina.ai."
