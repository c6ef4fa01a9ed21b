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
import stat
from pathlib import Path
from typing import BinaryIO

from lm_deluge_cli.errors import UsageError

__all__ = ["check_input", "is_stream", "open_input", "pollable"]

STDIN = "-"


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
    """Raise UsageError, naming the input and the fix, if it cannot be read.

    A regular file is opened; a stream is only looked at, never opened (see the module
    docstring). ``-`` (stdin) always passes. Call this before anything runs.
    """
    if os.fspath(path) == STDIN:
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
        os.close(os.open(p, os.O_RDONLY))
    except OSError as exc:
        raise UsageError(
            f"cannot read input file {p}: {exc.strerror or exc} (check its permissions)"
        ) from exc


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
