"""A Child's life: READY, INIT (INIT-2), heartbeats (HB-1), shutdown (SHUT-1, SHUT-2),
introspection and constructor checks."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pytest

from peepsy import Child
from peepsy.protocol import PROTOCOL_VERSION
from tests.child._support import FakeMaster, run, serving, settle, until

# --- READY (READY-1) -------------------------------------------------------------------------


def test_ready_answers_init_with_the_actions() -> None:
    async def main() -> None:
        child = Child("concurrent")
        child.register_handler("b", lambda data: data)
        child.register_handler("a", lambda data: data)
        async with serving(child) as master:
            master.init("sequential")
            await until(lambda: bool(master.readies))
            ready = master.readies[0]
            assert ready.pid == os.getpid()
            assert ready.protocol == PROTOCOL_VERSION
            assert ready.mode == "concurrent"
            assert ready.actions == ["a", "b"]
            assert isinstance(ready.implementation, str)
            assert ready.implementation.startswith("peepsy-python/")
            assert child.actions == ["a", "b"]
        assert len(master.readies) == 1

    run(main())


def test_ready_can_be_turned_off() -> None:
    async def main() -> None:
        async with serving(Child(send_ready=False)) as master:
            master.init("sequential")
            await settle()
            assert master.readies == []

    run(main())


# --- INIT (INIT-2) ----------------------------------------------------------------------------


def test_init_sets_the_mode_of_a_child_without_one() -> None:
    async def main() -> None:
        child = Child()
        before: str = child.mode
        assert before == "sequential"
        async with serving(child) as master:
            master.init("concurrent", target="w7")
            assert child.mode == "concurrent"
            assert child.target == "w7"

    run(main())


def test_init_does_not_change_an_explicit_mode() -> None:
    async def main() -> None:
        child = Child("sequential")
        async with serving(child) as master:
            master.init("concurrent")
            assert child.mode == "sequential"

    run(main())


def test_a_repeated_init_is_ignored() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.init("concurrent", target="first")
            master.init("sequential", target="second")
            assert child.mode == "concurrent"
            assert child.target == "first"

    run(main())


def test_a_mode_taken_from_init_runs_sync_handlers_in_parallel() -> None:
    async def main() -> None:
        child = Child()
        barrier = threading.Barrier(2, timeout=1)

        @child.handler("meet")
        def meet(data: int) -> int:
            barrier.wait()
            return data

        async with serving(child) as master:
            master.init("concurrent")
            ids = master.requests_at_once(("meet", 1), ("meet", 2))
            answers = [await master.response(rid) for rid in ids]
            assert [a.status for a in answers] == [200, 200]

    run(main())


def test_a_late_init_that_changes_the_mode_resizes_the_thread_pool() -> None:
    # A Node master may deliver INIT after the first requests (INIT-2).
    async def main() -> None:
        child = Child()
        barrier = threading.Barrier(2, timeout=1)
        child.register_handler("plain", lambda data: data)

        @child.handler("meet")
        def meet(data: int) -> int:
            barrier.wait()
            return data

        async with serving(child) as master:
            assert (await master.response(master.request("plain", 0))).data == 0
            master.init("concurrent")
            ids = master.requests_at_once(("meet", 1), ("meet", 2))
            answers = [await master.response(rid) for rid in ids]
            assert [a.status for a in answers] == [200, 200]

    run(main())


def test_requests_are_served_without_init() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            assert (await master.response(master.request("echo", 9))).data == 9

    run(main())


# --- heartbeats (HB-1) ------------------------------------------------------------------------


def test_heartbeats_start_at_once() -> None:
    async def main() -> None:
        child = Child(heartbeat_interval=5000)
        async with serving(child) as master:
            await until(lambda: len(master.heartbeats) == 1)
            beat = master.heartbeats[0]
            assert beat.pid == os.getpid()
            assert abs(beat.timestamp - time.time() * 1000) < 60_000
            assert beat.requests_active == 0

    run(main())


def test_heartbeats_follow_the_init_interval_at_once() -> None:
    # Over stdio, INIT arrives after the heartbeat thread has sent its first beat and
    # started waiting. The interval INIT asks for must apply from then on, not after a
    # first wait of the default 2000 ms: a master with heartbeat_interval=200 and the
    # default miss threshold of 3 would judge the child dead after 600 ms of silence.
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            await until(lambda: len(master.heartbeats) == 1)
            master.init("sequential", heartbeatInterval=30)
            await until(lambda: len(master.heartbeats) >= 4, limit=1.0)

    run(main())


def test_an_explicit_heartbeat_interval_beats_init() -> None:
    async def main() -> None:
        child = Child(heartbeat_interval=5000)
        async with serving(child) as master:
            master.init("sequential", heartbeatInterval=20)
            await until(lambda: len(master.heartbeats) == 1)
            await asyncio.sleep(0.15)
            assert len(master.heartbeats) == 1

    run(main())


def test_heartbeats_go_on_while_a_handler_blocks_and_count_the_work() -> None:
    async def main() -> None:
        child = Child("sequential", heartbeat_interval=25)
        release = threading.Event()

        @child.handler("block")
        def block(data: Any) -> Any:
            release.wait(3)
            return data

        async with serving(child) as master:
            first = master.request("block", 1)
            master.request("block", 2)
            await until(lambda: child.queue_size == 1)
            count = len(master.heartbeats)
            await until(lambda: len(master.heartbeats) >= count + 3)
            assert master.heartbeats[-1].requests_active == 2
            release.set()
            await master.response(first)

    run(main())


# --- shutdown (SHUT-1, SHUT-2) ----------------------------------------------------------------


def gated(child: Child) -> tuple[asyncio.Event, list[Any]]:
    gate = asyncio.Event()
    started: list[Any] = []

    @child.handler("work")
    async def work(data: Any) -> Any:
        started.append(data)
        await gate.wait()
        return data

    return gate, started


@pytest.mark.parametrize("how", ["method", "message", "eof"])
def test_shutdown_refuses_new_work_answers_the_queue_and_finishes_what_runs(how: str) -> None:
    async def main() -> None:
        child = Child("sequential")
        gate, started = gated(child)
        master = FakeMaster()
        task = asyncio.ensure_future(child.serve(master))
        await until(lambda: master.listener is not None)
        running = master.request("work", "running")
        queued = [master.request("work", i) for i in range(2)]
        await until(lambda: started == ["running"])
        assert child.is_active
        if how == "method":
            child.shutdown()
        elif how == "message":
            master.shutdown(timeout=5000)
        else:
            master.eof()
        assert not child.is_active
        for rid in queued:
            answer = await master.response(rid)
            assert answer.status == 503
            assert master.payload(rid)["code"] == "PEEPSY_SHUTTING_DOWN"
        if how != "eof":  # after end of input nothing more can arrive
            late = master.request("work", "late")
            assert (await master.response(late)).status == 503
        assert not task.done()
        gate.set()
        assert await asyncio.wait_for(task, 3) == 0
        assert master.responses[running].data == "running"
        assert started == ["running"]
        assert master.closed
        assert child.queue_size == 0

    run(main())


def test_shutdown_grace_abandons_handlers_that_run_too_long() -> None:
    async def main() -> None:
        child = Child("concurrent")
        gated(child)
        master = FakeMaster()
        task = asyncio.ensure_future(child.serve(master))
        await until(lambda: master.listener is not None)
        master.request("work", 1)
        await until(lambda: child.requests_in_progress == 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        master.shutdown(timeout=60)
        assert await asyncio.wait_for(task, 3) == 0
        assert loop.time() - started >= 0.055

    run(main())


def test_shutdown_when_idle_returns_at_once_and_twice_is_harmless() -> None:
    async def main() -> None:
        child = Child()
        master = FakeMaster()
        task = asyncio.ensure_future(child.serve(master))
        await until(lambda: master.listener is not None)
        child.shutdown()
        child.shutdown()
        assert await asyncio.wait_for(task, 3) == 0
        assert not child.is_active

    run(main())


def test_shutdown_before_serving_does_nothing() -> None:
    child = Child()
    child.shutdown()
    assert not child.is_active


def test_a_child_serves_once_at_a_time_and_can_serve_again() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            with pytest.raises(RuntimeError, match="already serving"):
                await child.serve(FakeMaster())
            await master.response(master.request("echo", 1))
            assert child.requests_handled == 1
        assert not child.is_active
        async with serving(child) as master:
            # Counters start again for a new channel.
            assert child.requests_handled == 0
            assert (await master.response(master.request("echo", 2))).data == 2

    run(main())


# --- introspection and checks -------------------------------------------------------------------


def test_introspection_while_serving() -> None:
    async def main() -> None:
        child = Child("concurrent", max_concurrency=1)
        gate, _ = gated(child)
        assert not child.is_active
        async with serving(child) as master:
            assert child.is_active
            assert (child.requests_in_progress, child.queue_size, child.requests_handled) == (
                0,
                0,
                0,
            )
            ids = master.requests_at_once(("work", 1), ("work", 2), ("work", 3))
            await settle()
            assert (child.requests_in_progress, child.queue_size) == (1, 2)
            gate.set()
            for rid in ids:
                await master.response(rid)
            assert (child.requests_in_progress, child.queue_size, child.requests_handled) == (
                0,
                0,
                3,
            )
            assert child.mode == "concurrent"
            assert child.actions == ["work"]

    run(main())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "parallel"}, "mode is 'sequential' or 'concurrent'"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 1.5}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"timeout": 0}, "timeout is an integer number of milliseconds"),
        ({"timeout": 300_001}, "timeout"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 2.5}, "heartbeat_interval"),
        ({"retries": -1}, "retries"),
        ({"retry_delay": -1}, "retry_delay"),
    ],
)
def test_constructor_checks(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Child(**options)


def test_a_child_on_a_channel_of_its_own_leaves_sigterm_alone() -> None:
    # SIGTERM belongs to the process: only a child serving on its own stdio takes it.
    async def main() -> None:
        before = signal.getsignal(signal.SIGTERM)
        async with serving(Child()):
            assert signal.getsignal(signal.SIGTERM) == before

    run(main())


def test_a_child_serves_off_the_main_thread() -> None:
    # No signal handlers there; everything else is the same.
    results: list[Any] = []

    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            results.append((await master.response(master.request("echo", "t"))).data)

    thread = threading.Thread(target=run, args=(main(),))
    thread.start()
    thread.join(10)
    assert results == ["t"]
