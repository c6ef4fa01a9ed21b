"""`lm-deluge cache path|stats|clear`: where the result cache is, what it holds, emptying it."""

from __future__ import annotations

import enum
import shlex
from typing import Annotated, Any

import anyio
import orjson
import typer

from lm_deluge_cli.cache.damage import DamagedCacheError, is_damage, remove_damaged
from lm_deluge_cli.cache.spec import default_cache_file, open_cache, parse_spec
from lm_deluge_cli.errors import LMDelugeError, UsageError
from lm_deluge_cli.redaction import scrub, url_secrets

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

    `clear` removes only this tool's entries (on Redis, only keys under its prefix). A
    cache damaged on disk (not a database any more, or malformed) cannot be counted;
    `clear` removes its files and the next run starts a new one.
    """
    target = spec or str(default_cache_file())
    if action is Action.path:
        parsed = parse_spec(target)
        if json_output:
            typer.echo(orjson.dumps({"backend": parsed.backend, "location": parsed.location}))
        else:
            typer.echo(parsed.location)
        return
    result = anyio.run(_act, target, action, _clear_command(spec))
    if json_output:
        typer.echo(orjson.dumps(result).decode())
    elif action is Action.stats:
        size = result["size_bytes"]
        entries = result["entries"]
        typer.echo(f"{result['backend']} cache at {result['location']}")
        typer.echo(f"entries: {'unknown' if entries is None else f'{entries:,}'}")
        typer.echo(f"size: {'unknown' if size is None else f'{size / 1e6:,.1f} MB'}")
    elif result.get("damaged"):
        typer.echo(
            f"the {result['backend']} cache at {result['location']} was damaged "
            f"({result['damaged']}): removed its {len(result['files_removed'])} files; "
            "the next run starts a new one"
        )
    else:
        removed = result["removed"]
        what = "entries" if removed < 0 else f"{removed:,} entries"
        typer.echo(f"removed {what} from the {result['backend']} cache at {result['location']}")


def _clear_command(spec: str | None) -> str:
    return "lm-deluge cache clear" + (f" --cache {shlex.quote(spec)}" if spec else "")


async def _act(spec: str, action: Action, clear_command: str) -> dict[str, Any]:
    try:
        return await _act_on(spec, action)
    except LMDelugeError:
        raise
    except Exception as exc:  # the store's own errors: name the cache, never a password
        parsed = parse_spec(spec)
        reason = scrub(f"{type(exc).__name__}: {exc}", url_secrets(spec))
        if not is_damage(exc):
            raise UsageError(
                f"cannot {action.value} the cache at {parsed.location}: {reason}"
            ) from None
        if action is not Action.clear:
            raise UsageError(
                f"the {parsed.backend} cache at {parsed.location} is damaged ({reason}); runs go "
                f"on without it. `{clear_command}` removes it and the next run starts a new one"
            ) from None
        try:
            removed = await anyio.to_thread.run_sync(remove_damaged, parsed)
        except DamagedCacheError as refused:
            raise UsageError(str(refused)) from None
        except OSError as failed:
            raise UsageError(
                f"the {parsed.backend} cache at {parsed.location} is damaged ({reason}) and "
                f"cannot be removed: {failed}"
            ) from None
        return {
            "backend": parsed.backend,
            "location": parsed.location,
            "removed": None,
            "damaged": reason,
            "files_removed": removed,
        }


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
