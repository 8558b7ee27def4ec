"""Worker groups: who is in one, which member takes the next request, and its capacity.

A group's cap on requests in flight is held as :class:`Slot` objects. A request takes
one before it is sent and its call gives it back when it settles, whatever settled it
(answer, timeout, death, cancellation): a slot can be given back only once, so the
count cannot drift (Node defect 1). Requests over the cap wait at the master, highest
priority first, each within its own timeout (SCHED-4, Node defect 3).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from typing import Final

from peepsy._errors import PeepsyShutdownError, PeepsyTimeoutError
from peepsy.master._stats import Strategy
from peepsy.master._stuck import OnStuck
from peepsy.master._worker import Worker

STRATEGIES: Final = ("round-robin", "random", "least-busy")


class Slot:
    """One unit of a group's capacity, held by one request."""

    __slots__ = ("_group",)

    def __init__(self, group: Group) -> None:
        self._group: Group | None = group

    def release(self) -> None:
        """Give the unit back to its group (again: a no-op), which may start a queued request."""
        group, self._group = self._group, None
        if group is not None:
            group.active -= 1
            if group._waiters:
                group.admit()


class Group:
    __slots__ = (
        "_next",
        "_seq",
        "_waiters",
        "active",
        "auto_restart",
        "max_concurrency",
        "members",
        "name",
        "on_stuck",
        "strategy",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[Worker] = []
        self.strategy: Strategy = "round-robin"
        self.max_concurrency: int | None = None
        self.auto_restart = True
        #: Its members' stuck-worker policy (None: the master's).
        self.on_stuck: OnStuck | None = None
        #: Slots held now.
        self.active = 0
        self._next = 0
        self._waiters: list[tuple[int, int, asyncio.Future[Slot]]] = []
        self._seq = itertools.count()

    @property
    def queued(self) -> int:
        return sum(1 for _, _, w in self._waiters if not w.done())

    def _has_room(self) -> bool:
        return self.max_concurrency is None or self.active < self.max_concurrency

    def try_acquire(self) -> Slot | None:
        cap = self.max_concurrency  # _has_room, inlined: this runs once per request
        if self._waiters or (cap is not None and self.active >= cap):
            return None
        self.active += 1
        return Slot(self)

    async def acquire(self, timeout: int, priority: int | None, target: str) -> Slot:
        """A slot, once one is free and no waiter of higher priority (or equal priority,
        earlier) is ahead; :class:`~peepsy.PeepsyTimeoutError` after ``timeout`` ms."""
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-(priority or 0), next(self._seq), waiter))
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives in the same loop pass as the slot is granted.
            async with asyncio.timeout(timeout / 1000):
                return await waiter
        except TimeoutError:
            self._give_back(waiter)
            raise PeepsyTimeoutError(
                f"Request timed out after {timeout}ms for target: {target} "
                f"(waiting for group capacity)",
                target=target,
                timeout_ms=timeout,
            ) from None
        except asyncio.CancelledError:
            self._give_back(waiter)
            raise

    def _give_back(self, waiter: asyncio.Future[Slot]) -> None:
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            waiter.result().release()  # granted at the last moment
        waiter.cancel()

    def admit(self) -> None:
        """Hand free slots to waiters (after a slot came back or the cap was raised)."""
        while self._waiters and self._has_room():
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                self.active += 1
                waiter.set_result(Slot(self))

    def fail_waiters(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_exception(PeepsyShutdownError("the master is shutting down"))

    def pick_or_none(self) -> Worker | None:
        """The member that takes the next request, by the group's strategy, among the
        members in rotation (:attr:`Worker.available`); None when there is none."""
        if self.strategy == "least-busy":
            # Busy is what we sent it and have not settled, or what it says it holds
            # (requests we gave up on included), whichever is more. Ties go in turn: the
            # first member must not take every request of a quiet group. Read inline
            # from maintained attributes: this runs for every member, every request.
            best: Worker | None = None
            ties: list[Worker] | None = None
            least = 0
            for worker in self.members:
                if not worker.available:
                    continue
                load = len(worker.pending)
                reported = worker.reported_active
                if reported is not None and reported > load:
                    load = reported
                if best is None or load < least:
                    best, least, ties = worker, load, None
                elif load == least:
                    if ties is None:
                        ties = [best]
                    ties.append(worker)
            if best is None:
                return None
            self._next += 1
            return best if ties is None else ties[self._next % len(ties)]
        ready = [w for w in self.members if w.available]
        if not ready:
            return None
        if self.strategy == "random":
            return random.choice(ready)  # noqa: S311 - load spreading, not security
        self._next %= len(ready)
        worker = ready[self._next]
        self._next += 1
        return worker

    def may_come(self) -> bool:
        """Some member, out of rotation now, may come back without anyone's action
        (starting, restarting, not yet ready, stalled, unhealthy)."""
        return any(worker.may_come for worker in self.members)
