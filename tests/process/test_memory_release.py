"""What the master keeps of a request once it is answered: nothing (issue 10, item 4).

Measured with tracemalloc in the master, against a real child, with the longest timeout
a request may have: an answered request that stayed referenced until its deadline (its
call, its answer's data) would show here as megabytes, where a released one shows as
nothing but the allocator's noise.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from peepsy import Master
from tests.process._support import peepsy_worker, run

LONGEST_TIMEOUT_MS = 300_000
MB = 1024 * 1024


async def _traced_after_collect() -> int:
    # One yield first: the loop's handle that resumed this task (the wake-up by the last
    # answer, which holds that answer) is dropped only once this step ends.
    await asyncio.sleep(0)
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_answered_requests_leave_nothing_behind() -> None:
    """20,000 answered requests of 1 KB each: were they kept, they would hold about
    40 MB; released, the master's traced memory is back where it started."""

    async def main() -> int:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker("concurrent"))
            data = {"text": "x" * 1000}

            async def caller(n: int) -> None:
                for _ in range(n):
                    reply = await m.request("echo", "w", data, timeout=LONGEST_TIMEOUT_MS)
                    assert reply.data == data

            await asyncio.gather(*(caller(10) for _ in range(100)))  # warm-up
            before = await _traced_after_collect()
            await asyncio.gather(*(caller(100) for _ in range(200)))
            assert m.get_active_requests_count() == 0
            return await _traced_after_collect() - before

    tracemalloc.start()
    try:
        grown = run(main())
    finally:
        tracemalloc.stop()
    assert grown < 2 * MB, f"{grown / MB:.1f} MB still held after 20,000 answers"


def test_answered_large_echoes_are_released() -> None:
    """Ten answered 5 MB echoes: kept, each would hold 5 MB more."""

    async def main() -> int:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker("concurrent"))
            big = {"text": "y" * (5 * MB)}
            await m.request("echo", "w", {"text": "warm"})
            before = await _traced_after_collect()
            for _ in range(10):
                reply = await m.request("echo", "w", big, timeout=LONGEST_TIMEOUT_MS)
                assert len(reply.data["text"]) == 5 * MB
                del reply
            return await _traced_after_collect() - before

    tracemalloc.start()
    try:
        grown = run(main())
    finally:
        tracemalloc.stop()
    assert grown < 3 * MB, f"{grown / MB:.1f} MB still held after ten 5 MB echoes"
