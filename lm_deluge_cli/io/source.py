"""Where the input's bytes come from, and how many times they may be read.

A regular file can be opened as often as a run needs: to check it, to count its lines for
the progress, to compare its ids with an existing output. Anything else is a stream (stdin,
a named pipe, a process substitution's /dev/fd/N, a character device) and is opened and
read exactly once, by the reader: a second open of a pipe takes the lines it reads from
the reader, or waits for a writer that may never come.
"""

from __future__ import annotations

import os
import selectors
import shlex
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from lm_deluge_cli.errors import UsageError

__all__ = [
    "SNIFF_BYTES",
    "check_input",
    "is_stream",
    "open_input",
    "pollable",
    "utf16_problem",
]

STDIN = "-"
# The most of the input's start gathered before its encoding is judged (the reader judges
# once it has the first line, so a slow stdin's first line is not held back).
SNIFF_BYTES = 4096
# Byte-order marks and codecs; the first characters decoded tell UTF-16 apart.
_UTF16 = ((b"\xff\xfe", "utf-16-le", "UTF-16LE"), (b"\xfe\xff", "utf-16-be", "UTF-16BE"))
_PEEK_BYTES = 256


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether the input can be read only once: stdin, a pipe, a device (not a regular file).

    Looks without opening (a stat), so it never consumes nor waits. A path that does not
    exist is not a stream: `check_input` says what is wrong with it.
    """
    if os.fspath(path) == STDIN:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_input(path: str | os.PathLike[str]) -> None:
    """Raise UsageError, naming the input and the fix, if it cannot be read as JSONL.

    A regular file is opened and its start read (a UTF-16 file is refused here, before
    anything runs); a stream is only looked at, never opened (see the module docstring);
    stdin only if it is closed (``<&-``). Call this before anything runs.
    """
    if os.fspath(path) == STDIN:
        if sys.stdin is None:
            raise UsageError(
                "cannot read prompts from stdin: it is closed; pipe the prompts in, or give -i FILE"
            )
        return
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise UsageError(
            f"input file not found: {p} (check the path, or pass - to read prompts from stdin)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read input file {p}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise UsageError(f"input {p} is a directory; pass a JSONL file with one prompt per line")
    if not stat.S_ISREG(mode):
        if not os.access(p, os.R_OK):
            raise UsageError(f"cannot read input {p}: permission denied (check its permissions)")
        return
    try:
        with open(p, "rb") as stream:
            head = stream.read(SNIFF_BYTES)
    except OSError as exc:
        raise UsageError(
            f"cannot read input file {p}: {exc.strerror or exc} (check its permissions)"
        ) from exc
    problem = utf16_problem(head, str(p), stream=False)
    if problem is not None:
        raise UsageError(problem)


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """Open the input for reading, never waiting: a named pipe opens at once, writer or not.

    A pipe opened before its writer reads as empty: read it only once `pollable` says it
    is ready (the reader does).
    """
    try:
        if not is_stream(path):
            return open(path, "rb", buffering=0)
        # O_NONBLOCK only for the open itself: a plain open of a pipe waits for a writer,
        # where no signal handler of the event loop can reach it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"cannot read input {path}: {exc.strerror or exc}") from exc
    os.set_blocking(fd, True)
    return open(fd, "rb", buffering=0)


def pollable(fd: int) -> bool:
    """Whether `fd` can be waited on until readable (a pipe, socket or terminal).

    What cannot be (a regular file, /dev/null, /dev/zero) is always readable at once.
    """
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    return True


def utf16_problem(head: bytes, name: str, *, stream: bool) -> str | None:
    """What to say if the input's first bytes look like UTF-16 (None if they do not).

    The start looks like UTF-16 when, decoded as UTF-16 (little- or big-endian, after a
    byte-order mark if there is one), it begins like a JSON object.
    """
    encoding = _utf16_name(head)
    if encoding is None:
        return None
    iconv = f"iconv -f {encoding} -t UTF-8"
    if stream:
        how = f"convert it on the way in: … | {iconv} | lm-deluge … -i -"
    else:
        converted = str(Path(name).with_suffix(".utf8.jsonl"))
        how = f"convert it first: {iconv} {shlex.quote(name)} > {shlex.quote(converted)}"
    return f"{name} looks like UTF-16 text, but input must be UTF-8 JSONL; {how}"


def _utf16_name(head: bytes) -> str | None:
    """iconv's name for the input's encoding if its start looks like UTF-16, else None."""
    # A JSONL line starts with "{": in UTF-16 that is 7B 00 or 00 7B, which UTF-8 JSON
    # never holds (a NUL byte). A byte-order mark alone is not enough: a bad first line
    # may start with those bytes too, and is then one bad line among good ones.
    for bom, codec, name in _UTF16:
        marked = head.startswith(bom)
        body = head[len(bom) :] if marked else head
        body = body[: min(len(body), _PEEK_BYTES) // 2 * 2]
        if body.decode(codec, errors="replace").lstrip(" \t\r\n").startswith("{"):
            # iconv reads a byte-order mark; without one, "UTF-16" would mean big-endian.
            return "UTF-16" if marked else name
    return None
