"""`lm-deluge models`: the known models, with their prices and capabilities."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lm_deluge_cli.cli.retrieval_models import list_retrieval_models
from lm_deluge_cli.errors import UsageError
from lm_deluge_cli.providers.registry import ModelInfo, Registry, load_registry

__all__ = ["model_record", "models"]

# Terminal widths below which the aliases, then the cache-write prices, are left out, so that
# model names keep room enough not to fold onto many lines.
ALIASES_MIN_WIDTH = 116
WRITES_MIN_WIDTH = 96

# One letter per capability, in table order; the legend under the table spells them out.
FLAGS = (
    ("J", "supports_json", "json mode"),
    ("S", "supports_json_schema", "json schema"),
    ("I", "supports_images", "images"),
    ("P", "supports_pdf", "pdf"),
    ("L", "supports_logprobs", "logprobs"),
    ("R", "reasoning", "reasoning"),
)


def models(
    provider: Annotated[
        str | None,
        typer.Option("-p", "--provider", help="Only this provider's models (e.g. anthropic)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per model on stdout, every field.")
    ] = False,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="The embedding models (for embed) instead.")
    ] = False,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="The rerank models (for rerank) instead.")
    ] = False,
) -> None:
    """List known models: prices (USD per million tokens), context window and capabilities.

    Any other model works too, written provider:model. An alias after its provider
    (anthropic:claude-sonnet-4-5) is that model, with the alias sent as the model name.
    """
    if embeddings and rerank:
        raise UsageError("give --embeddings or --rerank, not both")
    if embeddings or rerank:
        list_retrieval_models("embeddings" if embeddings else "rerank", provider, json_output)
        return
    registry = load_registry()
    if provider is not None and provider not in registry.providers:
        raise UsageError(
            f"unknown provider {provider!r} for --provider; "
            f"known providers: {', '.join(sorted(registry.providers))}"
        )
    rows = list(registry.iter_models(provider))
    if json_output:
        for model in rows:
            typer.echo(orjson.dumps(model_record(registry, model)).decode())
        return
    console = Console(highlight=False)
    # On a narrow terminal the aliases give way, then the cache-write prices, so that the
    # other numbers are never squeezed out.
    with_writes = console.width >= WRITES_MIN_WIDTH
    console.print(_table(registry, rows, console.width >= ALIASES_MIN_WIDTH, with_writes))
    writes = "; write, 1h: writes kept 5 minutes, 1 hour" if with_writes else ""
    prices = f"$/M: USD per million tokens. cached: prompt-cache reads{writes}."
    console.print(prices, markup=False)
    legend = ", ".join(f"{letter} {name}" for letter, _, name in FLAGS)
    console.print(f"caps: {legend}", markup=False)


def model_record(registry: Registry, model: ModelInfo) -> dict[str, Any]:
    """Every field of `model`, with its aliases, as one JSON-ready object; `wire_format` is
    the adapter it is sent with (its own, else its provider's)."""
    wire_format = model.wire_format or registry.provider(model.provider).wire_format
    return {
        **dataclasses.asdict(model),
        "wire_format": wire_format,
        "aliases": list(registry.aliases(model.id)),
    }


def _table(
    registry: Registry, rows: Iterable[ModelInfo], with_aliases: bool, with_writes: bool
) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    # Long names fold onto more lines rather than push the numbers off the edge.
    table.add_column("model", overflow="fold")
    if with_aliases:
        table.add_column("aliases", overflow="fold")
    # The prompt cache's prices sit between input and output: reads, then writes.
    headers = ("$/M in", "cached", *(("write", "1h") if with_writes else ()), "out", "context")
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True, min_width=6)
    table.add_column("caps", no_wrap=True, min_width=len(FLAGS))
    for model in rows:
        names = [model.id, ", ".join(registry.aliases(model.id))] if with_aliases else [model.id]
        writes = (model.cache_write_per_mtok, model.cache_write_1h_per_mtok) if with_writes else ()
        cells = (
            *names,
            _price(model.input_per_mtok),
            _price(model.cached_input_per_mtok),
            *(_price(price) for price in writes),
            _price(model.output_per_mtok),
            _tokens(model.context_window),
            "".join(letter if getattr(model, field) else "-" for letter, field, _ in FLAGS),
        )
        # Text, not str: a "[" in a model name must not be read as rich markup.
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _tokens(count: int | None) -> str:
    """A context window at a glance (131K, 1.05M); --json has the exact count."""
    if count is None:
        return "-"
    return f"{count / 1e6:.3g}M" if count >= 1_000_000 else f"{round(count / 1000)}K"
