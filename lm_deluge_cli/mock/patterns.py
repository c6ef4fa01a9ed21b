"""Strings that match a regular expression, for the mock's schema-conforming answers.

Reads literals, character classes, ``\\d \\w \\s .``, groups with ``|`` and quantifiers;
anything else (look-arounds, negated classes, back-references) is not read, and the caller
falls back to plain words. Which alternatives and repeat counts are taken is up to `draw`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["pattern_string"]

_CLASSES: Mapping[str, str] = {
    "d": "0123456789",
    "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "s": " ",
}
_ANY = "abcdefghijklmnopqrstuvwxyz"


class _Unsupported(Exception):
    """A pattern this generator does not read."""


def pattern_string(pattern: str, draw: Callable[[str], int]) -> str | None:
    """A string that `pattern` finds (as JSON Schema's unanchored ``pattern`` does), or None
    when the pattern is not simple enough or the result does not match."""
    try:
        node, end = _alternation(pattern, 0)
        if end != len(pattern):
            raise _Unsupported
        text = _emit(node, draw, [0])
        if re.search(pattern, text) is None:
            return None
    except (_Unsupported, re.error, RecursionError):
        return None
    return text


# A parsed pattern: ("alt", [sequences]), ("seq", [nodes]), ("set", chars),
# ("repeat", node, low, high).
_Node = tuple[Any, ...]


def _alternation(pattern: str, i: int) -> tuple[_Node, int]:
    branches = []
    sequence, i = _sequence(pattern, i)
    branches.append(sequence)
    while i < len(pattern) and pattern[i] == "|":
        sequence, i = _sequence(pattern, i + 1)
        branches.append(sequence)
    return ("alt", branches), i


def _sequence(pattern: str, i: int) -> tuple[_Node, int]:
    nodes: list[_Node] = []
    while i < len(pattern) and pattern[i] not in "|)":
        char = pattern[i]
        if char in "^$":
            i += 1
            continue
        if char == "(":
            i += 1
            if pattern.startswith("?:", i):
                i += 2
            elif pattern.startswith("?", i):
                raise _Unsupported  # look-arounds, named groups, flags
            atom, i = _alternation(pattern, i)
            if i >= len(pattern) or pattern[i] != ")":
                raise _Unsupported
            i += 1
        elif char == "[":
            atom, i = _char_set(pattern, i + 1)
        elif char == "\\":
            atom, i = _escape(pattern, i + 1)
        elif char == ".":
            atom, i = ("set", _ANY), i + 1
        elif char in "*+?{":
            raise _Unsupported
        else:
            atom, i = ("set", char), i + 1
        atom, i = _quantified(atom, pattern, i)
        nodes.append(atom)
    return ("seq", nodes), i


def _escape(pattern: str, i: int) -> tuple[_Node, int]:
    if i >= len(pattern):
        raise _Unsupported
    char = pattern[i]
    if char in _CLASSES:
        return ("set", _CLASSES[char]), i + 1
    if char.isalnum():
        raise _Unsupported  # \D \W \S \b \1 …
    return ("set", char), i + 1


def _char_set(pattern: str, i: int) -> tuple[_Node, int]:
    if i < len(pattern) and pattern[i] == "^":
        raise _Unsupported
    chars: list[str] = []
    while i < len(pattern) and pattern[i] != "]":
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _Unsupported
            escaped = pattern[i + 1]
            if escaped in _CLASSES:
                chars.extend(_CLASSES[escaped])
            elif escaped.isalnum():
                raise _Unsupported
            else:
                chars.append(escaped)
            i += 2
        elif i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            chars.extend(chr(c) for c in range(ord(char), ord(pattern[i + 2]) + 1))
            i += 3
        else:
            chars.append(char)
            i += 1
    if i >= len(pattern) or not chars:
        raise _Unsupported
    return ("set", "".join(chars)), i + 1


def _quantified(atom: _Node, pattern: str, i: int) -> tuple[_Node, int]:
    if i >= len(pattern) or pattern[i] not in "*+?{":
        return atom, i
    char = pattern[i]
    if char == "{":
        close = pattern.find("}", i)
        match = re.fullmatch(r"(\d+)(,(\d*))?", pattern[i + 1 : close]) if close > 0 else None
        if match is None:
            raise _Unsupported
        low = int(match.group(1))
        high = low if match.group(2) is None else int(match.group(3) or low + 2)
        i = close + 1
    else:
        low, high = {"*": (0, 2), "+": (1, 3), "?": (0, 1)}[char]
        i += 1
    if i < len(pattern) and pattern[i] in "?+":  # lazy or possessive: the same strings
        i += 1
    return ("repeat", atom, low, high), i


def _emit(node: _Node, draw: Callable[[str], int], counter: list[int]) -> str:
    counter[0] += 1
    salt = f"pattern{counter[0]}"
    kind = node[0]
    if kind == "alt":
        branches: Sequence[_Node] = node[1]
        return _emit(branches[draw(salt) % len(branches)], draw, counter)
    if kind == "seq":
        return "".join(_emit(child, draw, counter) for child in node[1])
    if kind == "set":
        chars: str = node[1]
        return chars[draw(salt) % len(chars)]
    _, atom, low, high = node
    count = low + draw(salt) % (high - low + 1) if high >= low else low
    return "".join(_emit(atom, draw, counter) for _ in range(count))
