"""Tools from a Python file: TOOLS, __all__ or the functions it defines, and every problem
named with the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.tool_use.modules import load_tools


def write(folder: Path, text: str, name: str = "tools.py") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_functions_a_file_defines_are_its_tools(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "from json import dumps\n"
        "def add(a: int, b: int) -> int:\n    '''Add.'''\n    return a + b\n"
        "def _helper() -> None: ...\n"
        "def shout(text: str) -> str:\n    return text.upper()\n",
    )
    assert [tool.name for tool in load_tools(path)] == ["add", "shout"]


def test_tools_or_all_choose_them(tmp_path: Path) -> None:
    listed = write(
        tmp_path,
        "def a() -> None: ...\ndef b() -> None: ...\nTOOLS = [b]\n",
        "listed.py",
    )
    assert [tool.name for tool in load_tools(listed)] == ["b"]
    named = write(tmp_path, "__all__ = ['a']\ndef a() -> None: ...\ndef b() -> None: ...\n", "n.py")
    assert [tool.name for tool in load_tools(named)] == ["a"]


def test_a_file_may_import_modules_beside_it(tmp_path: Path) -> None:
    write(tmp_path, "FACTOR = 3\n", "helpers_beside.py")
    path = write(
        tmp_path,
        "from helpers_beside import FACTOR\ndef triple(x: int) -> int:\n    return x * FACTOR\n",
    )
    (tool,) = load_tools(path)
    assert tool.function is not None and tool.function(2) == 6


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("raise RuntimeError('no network')\n", "failed to import: RuntimeError: no network"),
        ("X = 1\n", "exports no tools"),
        ("TOOLS = [3]\n", "a tool must be a Tool, a function or a tool definition"),
        ("def f(*args): ...\n", "*args cannot be described"),
    ],
)
def test_problems_name_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_tools(path)
    assert fragment in str(info.value)


def test_not_a_python_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a Python file"):
        load_tools(write(tmp_path, "x", "tools.txt"))
