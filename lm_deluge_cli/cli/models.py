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
    # Below 100 columns the aliases give way, so that the numbers are never squeezed out.
    console.print(_table(registry, rows, with_aliases=console.width >= 100))
    legend = ", ".join(f"{letter} {name}" for letter, _, name in FLAGS)
    console.print(f"$/M: USD per million tokens. caps: {legend}", markup=False)


def model_record(registry: Registry, model: ModelInfo) -> dict[str, Any]:
    """Every field of `model`, with its aliases, as one JSON-ready object; `wire_format` is
    the adapter it is sent with (its own, else its provider's)."""
    wire_format = model.wire_format or registry.provider(model.provider).wire_format
    return {
        **dataclasses.asdict(model),
        "wire_format": wire_format,
        "aliases": list(registry.aliases(model.id)),
    }


def _table(registry: Registry, rows: Iterable[ModelInfo], with_aliases: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    # Long names fold onto more lines rather than push the numbers off the edge.
    table.add_column("model", overflow="fold")
    if with_aliases:
        table.add_column("aliases", overflow="fold")
    for header in ("$/M in", "cached", "out", "context"):
        table.add_column(header, justify="right", no_wrap=True, min_width=6)
    table.add_column("caps", no_wrap=True, min_width=len(FLAGS))
    for model in rows:
        names = [model.id, ", ".join(registry.aliases(model.id))] if with_aliases else [model.id]
        cells = (
            *names,
            _price(model.input_per_mtok),
            _price(model.cached_input_per_mtok),
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
