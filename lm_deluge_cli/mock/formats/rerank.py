"""The rerank APIs as the mock speaks them: Cohere v2 (`POST /v2/rerank`), Voyage AI
(`POST /v1/rerank` under `/voyage`) and Jina AI (`POST /v1/rerank` under `/jina`, and the
unprefixed `/v1/rerank`).

Each takes ``{"model", "query", "documents": [str], <top n>?}`` and answers
``(index, relevance_score)`` pairs, most relevant first:

======  ========  =============  ====================  ==========================================
API     top n     max documents  documents returned    answer
======  ========  =============  ====================  ==========================================
Cohere  ``top_n``  1000           never                ``{"id", "results", "meta": {"billed_units":
                                                        {"search_units": ceil(docs / 100)}}}``
Voyage  ``top_k``  1000           ``return_documents``  ``{"object": "list", "data", "model",
                                  (default false)       "usage": {"total_tokens"}}``
Jina    ``top_n``  (none)         ``return_documents``  ``{"model", "usage": {"total_tokens"},
                                  (default true)        "results"}``
======  ========  =============  ====================  ==========================================

Cohere's 1000 is its documented recommendation, enforced here so batching code keeps to it.
Jina also takes documents as ``{"text": …}`` objects. Tokens are counted as Voyage defines
them: the query's tokens once per document, plus the documents' own.
"""

from __future__ import annotations

import math
import uuid
from abc import abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    Ranking,
    RerankFormat,
    RerankRequest,
    as_uuid,
    json_answer,
    load_json_object,
)
from lm_deluge_cli.mock.formats.dialects import detail_error
from lm_deluge_cli.mock.formats.inputs import Problem, read_flag, read_texts, read_top

__all__ = ["CohereRerank", "JinaRerank", "VoyageRerank"]


class _Rerank(RerankFormat):
    """Reads ``{"model", "query", "documents", …}``; subclasses name the fields they differ
    in, word the errors and write the answer."""

    top_field: ClassVar[str]
    max_documents: ClassVar[int | None]
    # None: the API has no return_documents (Cohere v2); else its default.
    documents_default: ClassVar[bool | None]
    # The fields only this API has, each with how it is read (to a value or a `Problem`),
    # checked after the shared ones.
    own_fields: ClassVar[tuple[tuple[str, Callable[[Any], object]], ...]] = ()

    @abstractmethod
    def _invalid(self, message: str) -> Answer:
        """The provider's 400 for a bad body."""

    def _documents(self, value: Any) -> list[str] | Problem:
        return read_texts(value, self.max_documents, one_allowed=False)

    def parse(self, call: Call) -> RerankRequest | Answer:
        request = load_json_object(call.body)
        if request is None:
            return self._invalid("The request body is not a valid JSON object.")
        for name in ("model", "query", "documents"):
            if name not in request:
                return self._invalid(f"Missing required field '{name}'.")
        model, query = request["model"], request["query"]
        if not isinstance(model, str) or not model:
            return self._invalid("'model' must be a non-empty string.")
        if not isinstance(query, str) or not query:
            return self._invalid("'query' must be a non-empty string.")
        documents = self._documents(request["documents"])
        if isinstance(documents, Problem):
            return self._invalid(f"'documents' {documents}.")
        top = read_top(request.get(self.top_field))
        if isinstance(top, Problem):
            return self._invalid(f"'{self.top_field}' {top}.")
        wanted = False
        if self.documents_default is not None:
            flag = read_flag(request.get("return_documents"), self.documents_default)
            if isinstance(flag, Problem):
                return self._invalid(f"'return_documents' {flag}.")
            wanted = flag
        for name, read in self.own_fields:
            value = read(request.get(name))
            if isinstance(value, Problem):
                return self._invalid(f"'{name}' {value}.")
        return RerankRequest(model, query, documents, top, wanted, request)

    def _results(
        self, request: RerankRequest, reply: Ranking, document: Any = None
    ) -> list[dict[str, Any]]:
        """The result objects; with ``return_documents``, each carries its document as
        ``document(text)`` writes it."""
        results: list[dict[str, Any]] = []
        for index, score in reply.results:
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if request.return_documents and document is not None:
                result["document"] = document(request.documents[index])
            results.append(result)
        return results


class CohereRerank(_Rerank):
    """Cohere's Rerank API v2: ``{"id", "message"}`` errors, search units as usage."""

    name = "cohere_rerank"
    answer_fields = ("results",)
    top_field = "top_n"
    max_documents = 1000
    documents_default = None
    own_fields = (("max_tokens_per_doc", read_top),)

    def _invalid(self, message: str) -> Answer:
        return json_answer(400, {"id": str(uuid.uuid4()), "message": f"invalid request: {message}"})

    def ranking(self, request: RerankRequest, reply: Ranking) -> Answer:
        # A search unit is one query with up to 100 documents.
        units = math.ceil(len(request.documents) / 100)
        payload = {
            "id": as_uuid(reply.response_id),
            "results": self._results(request, reply),
            "meta": {
                "api_version": {"version": "2", "is_experimental": False},
                "billed_units": {"search_units": units},
            },
        }
        return json_answer(200, payload)


class VoyageRerank(_Rerank):
    """Voyage AI's ``POST /v1/rerank``: ``top_k``, ``return_documents`` (default false),
    ``truncation``; ``{"detail"}`` errors."""

    name = "voyage_rerank"
    answer_fields = ("data",)
    top_field = "top_k"
    max_documents = 1000
    documents_default = False
    own_fields = (("truncation", partial(read_flag, default=True)),)

    def _invalid(self, message: str) -> Answer:
        return detail_error(400, message)

    def ranking(self, request: RerankRequest, reply: Ranking) -> Answer:
        payload = {
            "object": "list",
            "data": self._results(request, reply, lambda text: text),
            "model": request.model,
            "usage": {"total_tokens": reply.tokens},
        }
        return json_answer(200, payload)


class JinaRerank(_Rerank):
    """Jina AI's ``POST /v1/rerank``: ``top_n``, ``return_documents`` (default true), and
    documents as strings or ``{"text": …}`` objects; ``{"detail"}`` errors."""

    name = "jina_rerank"
    answer_fields = ("results",)
    top_field = "top_n"
    max_documents = None
    documents_default = True

    def _invalid(self, message: str) -> Answer:
        return detail_error(400, message)

    def _documents(self, value: Any) -> list[str] | Problem:
        if isinstance(value, list):
            value = [
                item["text"]
                if isinstance(item, dict) and isinstance(item.get("text"), str)
                else item
                for item in value
            ]
        return super()._documents(value)

    def ranking(self, request: RerankRequest, reply: Ranking) -> Answer:
        payload = {
            "model": request.model,
            "usage": {"total_tokens": reply.tokens},
            "results": self._results(request, reply, lambda text: {"text": text}),
        }
        return json_answer(200, payload)
