"""Request deadlines on a coarse timer wheel.

One ``call_later`` per request puts every request through the event loop's timer heap
twice (push, then cancel). Here requests whose deadlines fall in the same slot share one
timer, so a burst of requests with the same timeout costs one heap entry. The price is
precision: a timeout fires up to one slot (5 ms) late, never early.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Final, Generic, Protocol, TypeVar

SLOT_S: Final = 0.005


class _HasDeadline(Protocol):
    deadline: float
    settled: bool


T = TypeVar("T", bound=_HasDeadline)


class Deadlines(Generic[T]):
    __slots__ = ("_expire", "_loop", "_slots")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[T], None]) -> None:
        self._loop = loop
        self._expire = expire
        self._slots: dict[int, list[T]] = {}

    def add(self, item: T) -> None:
        """Call ``expire(item)`` once ``item.deadline`` (loop time) has passed, unless
        ``item.settled`` is true by then."""
        slot = math.ceil(item.deadline / SLOT_S)
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [item]
            self._loop.call_at(slot * SLOT_S, self._fire, slot)
        else:
            bucket.append(item)

    def _fire(self, slot: int) -> None:
        now = self._loop.time()
        for item in self._slots.pop(slot, ()):
            if item.settled:
                continue
            if item.deadline > now:  # the loop may wake a hair early
                self.add(item)
            else:
                self._expire(item)
