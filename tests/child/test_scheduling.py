"""Child scheduling: sequential (SCHED-1), concurrent (SCHED-2), expiry in the queue
(SCHED-3)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from peepsy import Child
from tests.child._support import FakeMaster, run, serving, settle, until


class Gated:
    """An async handler that records what runs and waits until the test opens its gate."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.running = 0
        self.peak = 0
        self.gates: dict[Any, asyncio.Event] = {}

    def gate(self, data: Any) -> asyncio.Event:
        return self.gates.setdefault(data, asyncio.Event())

    def release(self, data: Any) -> None:
        self.gate(data).set()

    def release_all(self) -> None:
        for data in self.started:
            self.release(data)

    async def __call__(self, data: Any) -> Any:
        self.started.append(data)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gate(data).wait()
        finally:
            self.running -= 1
        return data


def gated_child(*args: Any, **options: Any) -> tuple[Child, Gated]:
    child = Child(*args, **options)
    handler = Gated()
    child.register_handler("work", handler.__call__)
    return child, handler


async def drain(master: FakeMaster, handler: Gated, ids: list[str]) -> None:
    """Open gates as requests start until every id is answered."""
    while not all(rid in master.responses for rid in ids):
        handler.release_all()
        await asyncio.sleep(0.001)


# --- sequential (SCHED-1) ----------------------------------------------------------------


def test_sequential_runs_one_at_a_time_in_priority_then_arrival_order() -> None:
    async def main() -> None:
        child, handler = gated_child("sequential")
        async with serving(child) as master:
            first = master.request("work", "blocker")
            await until(lambda: handler.started == ["blocker"])
            ids = [first]
            for data, priority in [("a0", 0), ("b5", 5), ("c0", 0), ("d9", 9), ("e5", 5)]:
                ids.append(master.request("work", data, priority=priority))
            ids.append(master.request("work", "f-neg", priority=-1))
            await settle()
            assert (child.requests_in_progress, child.queue_size) == (1, 6)
            assert child.get_queue_size() == 6
            await drain(master, handler, ids)
            assert handler.started == ["blocker", "d9", "b5", "e5", "a0", "c0", "f-neg"]
            assert handler.peak == 1
            assert [master.responses[rid].data for rid in ids[:2]] == ["blocker", "a0"]
            assert child.requests_handled == child.get_requests_handled() == 7

    run(main())


def test_sequential_orders_requests_that_arrive_in_one_chunk() -> None:
    async def main() -> None:
        child, handler = gated_child("sequential")
        async with serving(child) as master:
            blocker = master.request("work", "blocker")
            await until(lambda: handler.started == ["blocker"])
            rids = master.requests_at_once(("work", 1), ("work", 2), ("work", 3))
            await settle()
            assert child.queue_size == 3
            await drain(master, handler, [blocker, *rids])
            assert handler.started == ["blocker", 1, 2, 3]
            assert handler.peak == 1

    run(main())


def test_sequential_runs_sync_handlers_one_at_a_time() -> None:
    async def main() -> None:
        child = Child("sequential")
        lock = threading.Lock()
        overlaps: list[int] = []
        seen: list[int] = []

        @child.handler("sync")
        def sync(data: int) -> int:
            if not lock.acquire(blocking=False):
                overlaps.append(data)
                return data
            try:
                seen.append(data)
                time.sleep(0.02)
            finally:
                lock.release()
            return data

        async with serving(child) as master:
            rids = master.requests_at_once(*[("sync", i) for i in range(4)])
            for rid in rids:
                await master.response(rid)
            assert overlaps == []
            assert seen == [0, 1, 2, 3]

    run(main())


# --- concurrent (SCHED-2) -----------------------------------------------------------------


def test_concurrent_without_a_cap_runs_everything_at_once() -> None:
    async def main() -> None:
        child, handler = gated_child("concurrent")
        async with serving(child) as master:
            ids = master.requests_at_once(*[("work", i) for i in range(6)])
            await until(lambda: handler.running == 6)
            assert child.queue_size == 0
            await drain(master, handler, ids)

    run(main())


def test_concurrent_respects_max_concurrency_for_a_burst() -> None:
    async def main() -> None:
        child, handler = gated_child("concurrent", max_concurrency=2)
        async with serving(child) as master:
            ids = master.requests_at_once(*[("work", i) for i in range(5)])
            await settle()
            assert handler.started == [0, 1]
            assert (child.requests_in_progress, child.queue_size) == (2, 3)
            await drain(master, handler, ids)
            assert handler.peak == 2
            assert sorted(handler.started) == [0, 1, 2, 3, 4]

    run(main())


def test_concurrent_starts_one_queued_request_per_freed_slot() -> None:
    async def main() -> None:
        child, handler = gated_child("concurrent", max_concurrency=2)
        async with serving(child) as master:
            ids = [master.request("work", i) for i in range(2)]
            await settle()
            ids += [master.request("work", i, priority=i) for i in range(2, 6)]
            await settle()
            assert (handler.running, child.queue_size) == (2, 4)
            handler.release(0)
            await until(lambda: ids[0] in master.responses)
            await settle()
            # One slot freed, one request started: the highest priority one.
            assert handler.started == [0, 1, 5]
            assert (handler.running, child.queue_size) == (2, 3)
            handler.release(1)
            handler.release(5)
            await until(lambda: len(handler.started) == 5)
            await settle()
            assert handler.started == [0, 1, 5, 4, 3]
            await drain(master, handler, ids)
            assert handler.peak == 2

    run(main())


def test_concurrent_handlers_that_finish_at_once_do_not_overrun_the_cap() -> None:
    async def main() -> None:
        child = Child("concurrent", max_concurrency=2)
        running = 0
        peak = 0

        @child.handler("quick")
        async def quick(data: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            running -= 1
            return data

        @child.handler("instant")
        def instant(data: int) -> int:
            return data

        child.register_handler("instant", instant, inline=True)
        async with serving(child) as master:
            ids = master.requests_at_once(*[("quick", i) for i in range(10)])
            ids += master.requests_at_once(*[("instant", i) for i in range(10)])
            for rid in ids:
                await master.response(rid)
            assert peak <= 2
            assert child.requests_handled == 20
            assert (child.requests_in_progress, child.queue_size) == (0, 0)

    run(main())


def test_concurrent_sync_handlers_run_in_parallel_threads() -> None:
    async def main() -> None:
        child = Child("concurrent", max_concurrency=2)
        barrier = threading.Barrier(2, timeout=1)

        @child.handler("meet")
        def meet(data: int) -> int:
            barrier.wait()
            return data

        async with serving(child) as master:
            ids = master.requests_at_once(("meet", 1), ("meet", 2))
            answers = [await master.response(rid) for rid in ids]
            assert [a.status for a in answers] == [200, 200]

    run(main())


# --- expiry in the queue (SCHED-3) ------------------------------------------------------------


@pytest.mark.parametrize(
    "options", [{"mode": "sequential"}, {"mode": "concurrent", "max_concurrency": 1}]
)
def test_a_queued_request_past_its_timeout_is_answered_408_and_never_runs(
    options: dict[str, Any],
) -> None:
    async def main() -> None:
        child, handler = gated_child(**options)
        async with serving(child) as master:
            blocker = master.request("work", "blocker")
            await until(lambda: handler.started == ["blocker"])
            loop = asyncio.get_running_loop()
            started = loop.time()
            expiring = master.request("work", "late", timeout=80)
            keeper = master.request("work", "kept", timeout=5000)
            answer = await master.response(expiring)
            assert loop.time() - started >= 0.075
            assert answer.status == 408
            payload = master.payload(expiring)
            assert (payload["name"], payload["code"]) == ("PeepsyTimeoutError", "PEEPSY_TIMEOUT")
            assert "80ms" in payload["message"]
            assert child.queue_size == 1
            await drain(master, handler, [blocker, keeper])
            assert handler.started == ["blocker", "kept"]
            assert master.responses[keeper].status == 200
            # Expired requests did not run, so they are not counted as handled.
            assert child.requests_handled == 2

    run(main())


def test_a_running_request_is_never_expired_by_the_child() -> None:
    async def main() -> None:
        child, handler = gated_child("sequential")
        async with serving(child) as master:
            rid = master.request("work", "long", timeout=50)
            await asyncio.sleep(0.15)
            assert rid not in master.responses
            handler.release("long")
            assert (await master.response(rid)).status == 200

    run(main())
