"""`Halted`: how a request the run stopped before sending leaves the engine."""

from __future__ import annotations

__all__ = ["Halted"]


class Halted(Exception):
    """The run is stopping (interrupt, spending cap, every model dead): this request was
    not sent, and its line gets no record so that the resume sends it."""
