"""What Ctrl-C and SIGTERM do before and after a run listens for them itself (the first
stops dispatching, the second stops at once): end the process with the code it has.

By default SIGTERM kills the process (status 143), even after a run has recorded another
exit code in its manifest; these handlers keep the process's code and the manifest's the
same.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "FinalCode", "Handlers", "exit_on_signal", "restore"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What signal.getsignal returns, per signal.
Handlers = dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None]


class _ExitWith:
    """A handler raising SystemExit(code) where the program is."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(self.code)


def exit_on_signal(code: int) -> Handlers:
    """From now on, SIGINT and SIGTERM raise SystemExit(`code`) where the program is;
    returns the handlers they had (for `restore`)."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ExitWith(code))
    return previous


def restore(previous: Handlers) -> None:
    """Give the signals back the handlers `exit_on_signal` replaced, unless those were
    this module's own: then the code set last stays until the process sets its final one
    (a caller in another program, a test say, gets its handlers back)."""
    for sig, handler in previous.items():
        if not isinstance(handler, _ExitWith):
            signal.signal(sig, handler)


class FinalCode:
    """The process's exit code, once decided, kept against signals to the process's end.

    Create it when the program starts: its exit hook then runs after the hooks registered
    later (a run's), which a signal can still cut short.
    """

    def __init__(self) -> None:
        self.status: int | None = None
        self._flushing = False
        atexit.register(self._at_exit)

    def keep(self, code: object) -> None:
        """From now on, SIGINT and SIGTERM end the process at once with `code` (a SystemExit
        code: None is 0, an int itself, anything else 1), skipping a shutdown that may wait
        on a thread that never returns."""
        self.status = 0 if code is None else code if isinstance(code, int) else 1
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._exit_at_once)

    def _exit_at_once(self, signum: int, frame: FrameType | None) -> None:
        # What was printed is kept, unless the flush itself blocks (then a second signal).
        if not self._flushing:
            self._flush()
        os._exit(self.status or 0)

    def _flush(self) -> None:
        self._flushing = True
        for stream in (sys.stdout, sys.stderr):
            if stream is None:  # closed by the shell (>&-)
                continue
            with contextlib.suppress(OSError, ValueError):
                stream.flush()

    def _at_exit(self) -> None:
        # Python next gives the signals their defaults back to tear its modules down (a
        # tenth of a second or more, during which SIGTERM would kill with 143), but keeps
        # an ignored signal ignored.
        if self.status is None:
            return
        self._flush()  # a signal while this blocks still ends the process with the code
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
