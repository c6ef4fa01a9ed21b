"""Leaving a ``with`` or ``async with`` block closes, whether or not the block raised."""

from __future__ import annotations

import pytest

from lm_deluge_cli.io.closing import AsyncClosing, Closing


class _Counted(AsyncClosing):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class _Judging(Closing):
    def __init__(self) -> None:
        self.exits: list[BaseException | None] = []

    def _close_on_exit(self, exc: BaseException | None) -> None:
        self.exits.append(exc)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_with_returns_itself_and_closes_once() -> None:
    counted = _Counted()
    with counted as entered:
        assert entered is counted
        assert counted.closed == 0
    assert counted.closed == 1


def test_with_closes_when_the_block_raises() -> None:
    counted = _Counted()
    with pytest.raises(KeyError), counted:
        raise KeyError("x")
    assert counted.closed == 1


@pytest.mark.anyio
async def test_async_with_closes_when_the_block_raises() -> None:
    counted = _Counted()
    with pytest.raises(KeyError):
        async with counted as entered:
            assert entered is counted
            raise KeyError("x")
    assert counted.closed == 1


def test_a_subclass_is_told_the_error_the_block_raised() -> None:
    judging = _Judging()
    with judging:
        pass
    error = ValueError("bad")
    with pytest.raises(ValueError), judging:
        raise error
    assert judging.exits == [None, error]


def test_closing_without_close_is_an_error() -> None:
    with pytest.raises(NotImplementedError), Closing():
        pass
