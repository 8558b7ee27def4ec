"""The deadline wheel: settled items leave it at once, and at most one empty bucket waits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from peepsy.session import Deadlines
from peepsy.session._deadlines import SLOT_S, _Bucket, clock_of


class _Item:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.wheel: set[Any] | None = None


def test_one_item_at_a_time_in_a_slot_shares_one_timer_and_one_empty_bucket_waits() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        expired: list[_Item] = []
        wheel: Deadlines[_Item] = Deadlines(loop, expired.append)
        base = (int(loop.time() / SLOT_S) + 100) * SLOT_S  # the start of a slot, 0.5 s on
        first = _Item(base + SLOT_S / 4)
        wheel.add(first)
        bucket = first.wheel
        wheel.discard(first)
        assert first.wheel is None  # nothing of a settled item is kept
        assert len(wheel) == 0
        second = _Item(base + SLOT_S / 2)  # the same slot: the same bucket, the same timer
        wheel.add(second)
        assert second.wheel is bucket
        wheel.discard(second)
        later = _Item(base + 3 * SLOT_S)  # another slot: the empty one before it goes
        wheel.add(later)
        wheel.discard(later)
        assert isinstance(bucket, _Bucket)
        assert bucket.timer is not None
        assert bucket.timer.cancelled()
        assert later.wheel is None
        assert later not in wheel._slots[max(wheel._slots)]
        assert len(wheel._slots) == 1  # only the last emptied bucket waits
        assert expired == []

    asyncio.run(main())


def test_an_item_in_the_kept_bucket_still_expires_on_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = asyncio.Event()
        expired: list[_Item] = []

        def expire(item: _Item) -> None:
            expired.append(item)
            fired.set()

        wheel: Deadlines[_Item] = Deadlines(loop, expire)
        deadline = loop.time() + 0.05
        answered = _Item(deadline)
        wheel.add(answered)
        wheel.discard(answered)  # its bucket is kept, empty, with its timer
        unanswered = _Item(deadline)
        wheel.add(unanswered)
        await asyncio.wait_for(fired.wait(), 10)
        assert expired == [unanswered]
        assert loop.time() >= unanswered.deadline
        assert len(wheel) == 0

    asyncio.run(main())


def test_the_clock_of_asyncio_s_own_loop_is_monotonic_itself() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert clock_of(loop) is time.monotonic
        before = loop.time()
        assert before <= clock_of(loop)() <= loop.time()
    finally:
        loop.close()


def test_a_loop_with_a_clock_of_its_own_keeps_it() -> None:
    class Frozen(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return 42.0

    loop = Frozen()
    patched = asyncio.new_event_loop()
    patched.time = lambda: 7.0  # type: ignore[method-assign]  # a test's clock on one loop
    try:
        assert clock_of(loop)() == 42.0
        assert clock_of(patched)() == 7.0
    finally:
        loop.close()
        patched.close()
