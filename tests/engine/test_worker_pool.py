"""WorkerPool: workers start as work reaches them, never past the limit, and the pool ends
once closed and its last worker is done."""

from __future__ import annotations

import anyio
import pytest

from lm_deluge_cli.engine.worker_pool import WorkerPool

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_hires_up_to_the_limit_and_ends_after_close_with_its_workers() -> None:
    pool = WorkerPool(2)
    assert not pool.can_hire  # not running yet
    done: list[int] = []
    release = anyio.Event()

    async def worker(n: int) -> None:
        await release.wait()
        done.append(n)

    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        for n in range(5):
            if pool.can_hire:
                pool.hire(worker, n)
        assert (pool.hired, pool.can_hire) == (2, False)
        with pytest.raises(RuntimeError):
            pool.hire(worker, 9)
        pool.close()
        await anyio.sleep(0.01)
        assert not done  # closed, but its workers still run
        release.set()
    assert sorted(done) == [0, 1] and not pool.can_hire
