"""A master and real peepsy Children, in memory: the two policies together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from peepsy import Action, Child, Master, PeepsyTimeoutError, RemoteError
from peepsy.transport import MemoryLauncher, SpawnSpec
from tests.master._support import run, until


class Order(BaseModel):
    item: str
    quantity: int


class Quote(BaseModel):
    item: str
    price: float


QUOTE = Action("quote", Order, Quote)


def launcher(make: Callable[[], Child]) -> tuple[MemoryLauncher, list[Child]]:
    made: list[Child] = []

    def factory(spec: SpawnSpec) -> Child:
        child = make()
        made.append(child)
        return child

    return MemoryLauncher({"child": factory}), made


def test_typed_action_end_to_end() -> None:
    def make() -> Child:
        child = Child()

        @child.handler(QUOTE)
        def quote(order: Order) -> Quote:
            return Quote(item=order.item, price=1.5 * order.quantity)

        return child

    async def main() -> None:
        memory, _ = launcher(make)
        async with Master(launcher=memory) as master:
            await master.spawn_child("w1", ["child"])
            quote = await master.request(QUOTE, "w1", Order(item="tea", quantity=4))
            assert quote == Quote(item="tea", price=6.0)
            with pytest.raises(RemoteError) as info:
                await master.request("quote", "w1", {"item": "tea"})
            assert info.value.status == 422
            assert [d["path"] for d in info.value.details] == ["$.quantity"]

    run(main())


def test_ready_heartbeats_and_mode_from_init() -> None:
    def make() -> Child:
        child = Child(mode=None)
        child.register_handler("mode", lambda data: child.mode, inline=True)
        return child

    async def main() -> None:
        memory, made = launcher(make)
        async with Master(launcher=memory, heartbeat_interval=40) as master:
            await master.spawn_child("w1", ["child"], mode="concurrent")
            await until(lambda: master.get_process_stats("w1").last_heartbeat_at is not None)
            stats = master.get_process_stats("w1")
            assert stats.status == "running"
            assert stats.actions == ("mode",)
            assert (await master.request("mode", "w1")).data == "concurrent"
            assert made[0].target == "w1"
            # Heartbeats keep coming at the interval INIT asked for.
            first = stats.last_heartbeat_at
            assert first is not None
            await until(lambda: (master.get_process_stats("w1").last_heartbeat_at or 0) > first)
            await asyncio.sleep(0.2)
            assert master.get_unhealthy_processes() == []

    run(main())


def test_a_child_asks_the_master_while_serving() -> None:
    holder: list[Child] = []

    def make() -> Child:
        child = Child()
        holder.append(child)

        @child.handler("total")
        async def total(data: list[str]) -> float:
            prices = [await child.request("price", item) for item in data]
            return float(sum(prices))

        return child

    async def main() -> None:
        memory, _ = launcher(make)
        async with Master(launcher=memory) as master:
            master.register_handler("price", {"tea": 2.0, "cake": 3.5}.__getitem__, inline=True)
            await master.spawn_child("w1", ["child"])
            assert (await master.request("total", "w1", [])).data == 0.0
            reply = await master.request("total", "w1", ["tea", "cake", "tea"])
            assert reply.data == 7.5
            with pytest.raises(RemoteError) as info:
                await master.request("total", "w1", ["coffee"])
            # The master's KeyError came back to the child as a RemoteError, which the
            # child relays with the master's status and identity.
            assert info.value.status == 500
            assert info.value.remote_name == "KeyError"

    run(main())


def test_graceful_shutdown_lets_running_requests_finish_and_refuses_queued_ones() -> None:
    gate: list[asyncio.Event] = []

    def make() -> Child:
        child = Child("sequential")

        @child.handler("work")
        async def work(data: int) -> int:
            await gate[0].wait()
            return data

        return child

    async def main() -> None:
        gate.append(asyncio.Event())
        memory, made = launcher(make)
        master = Master(launcher=memory)
        await master.spawn_child("w1", ["child"])
        running = asyncio.ensure_future(master.request("work", "w1", 1))
        queued = asyncio.ensure_future(master.request("work", "w1", 2))
        await until(lambda: made[0].requests_in_progress == 1 and made[0].queue_size == 1)
        stopping = asyncio.ensure_future(master.graceful_shutdown(timeout=3000))
        with pytest.raises(RemoteError) as info:
            await queued
        assert info.value.status == 503
        assert info.value.remote_name == "PeepsyShutdownError"
        gate[0].set()
        assert (await running).data == 1
        await stopping
        assert not made[0].is_active

    run(main())


def test_a_sequential_child_queues_behind_a_slow_request_and_the_master_times_out() -> None:
    def make() -> Child:
        child = Child("sequential")

        @child.handler("sleep")
        async def sleep(data: int) -> int:
            await asyncio.sleep(data / 1000)
            return data

        return child

    async def main() -> None:
        memory, _ = launcher(make)
        async with Master(launcher=memory) as master:
            await master.spawn_child("w1", ["child"])
            slow = asyncio.ensure_future(master.request("sleep", "w1", 300))
            await asyncio.sleep(0.02)
            # Queued at the child behind the slow one, it expires there (408, SCHED-3)
            # about when the master gives up on it.
            with pytest.raises((PeepsyTimeoutError, RemoteError)):
                await master.request("sleep", "w1", 1, timeout=100)
            assert (await slow).data == 300
            stats = master.get_process_stats("w1")
            assert stats.requests_active == 0

    run(main())
