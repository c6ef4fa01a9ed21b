"""Answers to embeddings and rerank requests: the mock's vectors and rankings (`wire`),
written in the request's own format. Pure functions; the simulator counts and delivers them.
"""

from __future__ import annotations

from lm_deluge_cli.mock.formats.base import (
    Answer,
    AnyFormat,
    Embeddings,
    EmbedFormat,
    EmbedRequest,
    Ranking,
    RerankFormat,
    RerankRequest,
)
from lm_deluge_cli.mock.wire import (
    count_text_tokens,
    embedding_vector,
    rank_documents,
    rerank_tokens,
)

__all__ = ["retrieval_answer", "retrieval_tokens"]


def retrieval_tokens(request: EmbedRequest | RerankRequest) -> int:
    """What the request costs against a tokens limit, and the usage it reports: the texts'
    tokens, or for a rerank the query's tokens once per document plus the documents'."""
    if isinstance(request, EmbedRequest):
        return sum(count_text_tokens(text) for text in request.texts)
    return rerank_tokens(request.query, request.documents)


def retrieval_answer(
    fmt: AnyFormat, request: EmbedRequest | RerankRequest, response_id: str
) -> Answer:
    """The successful answer: a unit vector per text, or the documents ranked by relevance
    and cut to ``top_n``; ``response_id`` is unique hex for the format's own ids."""
    tokens = retrieval_tokens(request)
    if isinstance(request, EmbedRequest) and isinstance(fmt, EmbedFormat):
        model, size = request.model, request.dimensions
        vectors = [embedding_vector(model, text, size) for text in request.texts]
        return fmt.embeddings(request, Embeddings(vectors, tokens, response_id))
    if isinstance(request, RerankRequest) and isinstance(fmt, RerankFormat):
        ranked = rank_documents(request.model, request.query, request.documents, request.top_n)
        return fmt.ranking(request, Ranking(ranked, tokens, response_id))
    raise TypeError(f"{fmt.name} cannot answer a {type(request).__name__}")
