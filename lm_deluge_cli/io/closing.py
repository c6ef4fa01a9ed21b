"""The ``with`` blocks of io/'s open files (the input reader, the results writer): leaving
one closes the file, whether or not the block raised."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

__all__ = ["AsyncClosing", "Closing"]


class Closing:
    """A context manager whose exit is `_close_on_exit`: `close`, which subclasses define."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def _close_on_exit(self, exc: BaseException | None) -> None:
        """Close; a subclass may instead decide by the error `exc` the block raised."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_on_exit(exc)


class AsyncClosing(Closing):
    """`Closing`, for ``async with`` too."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)
