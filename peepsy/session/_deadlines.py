"""Request deadlines on a coarse timer wheel.

One ``call_later`` per request puts every request through the event loop's timer heap
twice (push, then cancel). Here requests whose deadlines fall in the same slot share one
timer, so a burst of requests with the same timeout costs one heap entry. The price is
precision: a timeout fires up to one slot (5 ms) late, never early.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, Final, Generic, Protocol, TypeVar

SLOT_S: Final = 0.005


def clock_of(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or what it reads: asyncio's own loops read ``time.monotonic``,
    and calling that directly saves a Python call per reading (the master takes two per
    request). Any other loop (a subclass with its own clock, uvloop) keeps its own."""
    # The bound method's function: a loop whose time() was replaced, on its class or on
    # itself (a test's clock), keeps it.
    if getattr(loop.time, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class _HasDeadline(Protocol):
    @property
    def deadline(self) -> float: ...

    #: The bucket the wheel keeps it in, set by :meth:`Deadlines.add`.
    wheel: set[Any] | None

    def __hash__(self) -> int: ...


T = TypeVar("T", bound=_HasDeadline)


class _Bucket(set[Any]):
    """The items of one slot, with the slot's number and its loop timer."""

    __slots__ = ("slot", "timer")

    def __init__(self, slot: int) -> None:
        super().__init__()
        self.slot = slot
        self.timer: asyncio.TimerHandle | None = None


class Deadlines(Generic[T]):
    """Items in buckets by their deadline's slot; each bucket has one loop timer. An
    item leaves the wheel the moment it settles (:meth:`discard`), so nothing of an
    answered request is kept until its deadline. Of the buckets left empty, the last one
    is kept with its timer, and the one before it dropped and its timer cancelled: one
    request at a time (each answered before the next is sent) then shares a timer with
    the others of its slot instead of making and cancelling one each (measured: 6 us of
    the master's CPU per request at 1 in flight), and at most one empty bucket waits."""

    __slots__ = ("_expire", "_loop", "_slots", "_spare")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[T], None]) -> None:
        self._loop = loop
        self._expire = expire
        self._slots: dict[int, _Bucket] = {}
        #: The bucket last left empty, kept with its timer for the next item of its slot.
        self._spare: _Bucket | None = None

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._slots.values())

    def add(self, item: T, deadline: float | None = None) -> None:
        """Call ``expire(item)`` once ``item.deadline`` (loop time) has passed, unless
        it is discarded first. A caller that has just computed the deadline passes it
        (equal to ``item.deadline``), which saves reading it through a property."""
        slot = math.ceil((item.deadline if deadline is None else deadline) / SLOT_S)
        bucket = self._slots.get(slot)
        if bucket is None:
            bucket = self._slots[slot] = _Bucket(slot)
            bucket.timer = self._loop.call_at(slot * SLOT_S, self._fire, slot)
        bucket.add(item)
        item.wheel = bucket

    def discard(self, item: T) -> None:
        """Forget ``item``: it will not expire (a no-op when it is not scheduled)."""
        bucket = item.wheel
        if bucket is not None:
            item.wheel = None
            bucket.discard(item)
            if not bucket and bucket is not self._spare and isinstance(bucket, _Bucket):
                spare, self._spare = self._spare, bucket
                if spare is not None and not spare:  # still empty: nothing came to its slot
                    self._drop(spare)

    def _drop(self, bucket: _Bucket) -> None:
        if self._slots.get(bucket.slot) is bucket:
            del self._slots[bucket.slot]
            if bucket.timer is not None:
                bucket.timer.cancel()

    def _fire(self, slot: int) -> None:
        now = self._loop.time()
        bucket = self._slots.pop(slot, None)
        if bucket is not None and bucket is self._spare:
            self._spare = None
        if not bucket:
            return
        for item in list(bucket):
            item.wheel = None
            if item.deadline > now:  # the loop may wake a hair early
                self.add(item)
            else:
                self._expire(item)
