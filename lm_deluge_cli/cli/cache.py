"""`lm-deluge cache path|stats|clear`: where the result cache is, what it holds, emptying it."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import anyio
import orjson
import typer

from lm_deluge_cli.cache.redact import scrub, url_secrets
from lm_deluge_cli.cache.spec import default_cache_file, open_cache, parse_spec
from lm_deluge_cli.errors import LMDelugeError, UsageError

__all__ = ["cache"]


class Action(enum.StrEnum):
    path = "path"
    stats = "stats"
    clear = "clear"


def cache(
    action: Annotated[Action, typer.Argument(help="path | stats | clear")],
    spec: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="The cache to act on, as `run --cache` takes it (default: the default one).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Show where the result cache is, count what it holds, or empty it.

    `clear` removes only this tool's entries (on Redis, only keys under its prefix).
    """
    target = spec or str(default_cache_file())
    if action is Action.path:
        parsed = parse_spec(target)
        if json_output:
            typer.echo(orjson.dumps({"backend": parsed.backend, "location": parsed.location}))
        else:
            typer.echo(parsed.location)
        return
    result = anyio.run(_act, target, action)
    if json_output:
        typer.echo(orjson.dumps(result).decode())
    elif action is Action.stats:
        size = result["size_bytes"]
        entries = result["entries"]
        typer.echo(f"{result['backend']} cache at {result['location']}")
        typer.echo(f"entries: {'unknown' if entries is None else f'{entries:,}'}")
        typer.echo(f"size: {'unknown' if size is None else f'{size / 1e6:,.1f} MB'}")
    else:
        removed = result["removed"]
        what = "entries" if removed < 0 else f"{removed:,} entries"
        typer.echo(f"removed {what} from the {result['backend']} cache at {result['location']}")


async def _act(spec: str, action: Action) -> dict[str, Any]:
    try:
        return await _act_on(spec, action)
    except LMDelugeError:
        raise
    except Exception as exc:  # the store's own errors: name the cache, never a password
        where = parse_spec(spec).location
        reason = scrub(f"{type(exc).__name__}: {exc}", url_secrets(spec))
        raise UsageError(f"cannot {action.value} the cache at {where}: {reason}") from None


async def _act_on(spec: str, action: Action) -> dict[str, Any]:
    store = open_cache(spec)
    try:
        if action is Action.clear:
            removed = await store.clear()
            return {"backend": store.backend, "location": store.location, "removed": removed}
        stats = await store.stats()
        return {
            "backend": stats.backend,
            "location": stats.location,
            "entries": stats.entries,
            "size_bytes": stats.size_bytes,
        }
    finally:
        await store.aclose()
