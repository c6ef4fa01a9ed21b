"""Tools from a Python file, for agent loops run from a job (``tools_module = "tools.py"``).

The file's tools are, in order of preference: its ``TOOLS`` list (Tool objects or typed
functions), the functions its ``__all__`` names, or every public function it defines itself
(not those it imports).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.tool_use.tool import Tool, as_tool

__all__ = ["load_tools"]


def load_tools(path: str | Path) -> list[Tool]:
    """The tools a Python file exports; ConfigError naming the file for one that cannot be
    imported, exports nothing, or exports something that is not a tool."""
    path = Path(path)
    module = _import(path)
    exported = getattr(module, "TOOLS", None)
    if exported is None:
        names = getattr(module, "__all__", None)
        if names is not None:
            exported = [getattr(module, name) for name in names]
        else:
            exported = [
                value
                for name, value in vars(module).items()
                if not name.startswith("_")
                and inspect.isfunction(value)
                and value.__module__ == module.__name__
            ]
    if not isinstance(exported, list | tuple) or not exported:
        raise ConfigError(
            f"{path} exports no tools: define functions in it, or list them in TOOLS = [...]"
        )
    tools = [as_tool(item) for item in exported]
    names = [tool.name for tool in tools]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"{path}: more than one tool is named {twice[0]!r}")
    return tools


def _import(path: Path) -> ModuleType:
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"tools_module {path} is not a Python file")
    name = f"lm_deluge_tools_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"tools_module {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Its own folder first, so it can import modules beside it.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(
            f"tools_module {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module
