"""`lm-deluge models --embeddings` / `--rerank`: the known embedding and rerank models."""

from __future__ import annotations

import dataclasses

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.providers.retrieval import EmbeddingModel, RerankModel, load_retrieval_registry

__all__ = ["list_retrieval_models"]


def list_retrieval_models(kind: str, provider: str | None, json_output: bool) -> None:
    """Print the embedding (`kind` "embeddings") or rerank models, all or one provider's."""
    registry = load_retrieval_registry()
    if provider is not None and provider not in registry.providers:
        raise UsageError(
            f"unknown provider {provider!r} for --provider; "
            f"known providers: {', '.join(sorted(registry.providers))}"
        )
    rows: list[EmbeddingModel | RerankModel] = list(
        registry.iter_embedding_models() if kind == "embeddings" else registry.iter_rerank_models()
    )
    rows = [m for m in rows if provider is None or m.provider == provider]
    if json_output:
        for model in rows:
            record = {**dataclasses.asdict(model), "aliases": list(registry.aliases(model.id))}
            typer.echo(orjson.dumps(record).decode())
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("model", overflow="fold")
    table.add_column("aliases", overflow="fold")
    if kind == "embeddings":
        for header in ("$/M in", "dims", "per request", "tokens/request"):
            table.add_column(header, justify="right", no_wrap=True)
    else:
        for header in ("$/M in", "$/search", "docs/request"):
            table.add_column(header, justify="right", no_wrap=True)
    for model in rows:
        aliases = ", ".join(registry.aliases(model.id))
        if isinstance(model, EmbeddingModel):
            cells = [
                _number(model.input_per_mtok),
                _number(model.dimensions),
                str(model.max_batch_inputs),
                _number(model.max_batch_tokens),
            ]
        else:
            cells = [
                _number(model.input_per_mtok),
                _number(model.per_search_usd),
                str(model.max_batch_documents),
            ]
        table.add_row(*(Text(c) for c in (model.id, aliases, *cells)))
    console = Console(highlight=False)
    console.print(table)
    console.print("Any other model works too, written provider:model.", markup=False)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
