"""A child that dies: its requests fail at once (Node defect 2), move to another group
member when retried, and the child is respawned within its restart intensity."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from peepsy import Master, PeepsyProcessError, Reply
from tests.process._support import (
    PYTHON,
    Events,
    eventually,
    live_children,
    peepsy_worker,
    pid_running,
    run,
)


def _pid(m: Master, target: str) -> int:
    pid = m.get_process_stats(target).pid
    assert pid is not None
    return pid


def test_kill_9_fails_every_request_in_flight_at_once() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker("concurrent"))
            pid = (await m.request("info", "w")).data["pid"]
            calls = [
                asyncio.ensure_future(m.request("sleep", "w", 30_000, timeout=60_000))
                for _ in range(5)
            ]
            await eventually(lambda: m.get_process_stats("w").requests_active == 5, "in flight")
            await asyncio.sleep(0.2)  # let the child start them all
            started = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            results = await asyncio.gather(*calls, return_exceptions=True)
            elapsed = time.monotonic() - started
            assert all(isinstance(r, PeepsyProcessError) for r in results), results
            assert elapsed < 5, f"requests failed only after {elapsed:.1f} s"
            for r in results:
                assert isinstance(r, PeepsyProcessError)
                assert r.target == "w"
                assert r.returncode == -signal.SIGKILL
            exit_event = events.exit[0]
            assert exit_event.signal == signal.SIGKILL
            assert exit_event.failed_requests == 5
            assert not exit_event.expected
            assert m.get_process_stats("w").errors >= 5
            # Leave only once the respawn is done (see the graceful_shutdown test below).
            await eventually(lambda: events.respawned("w"), "respawned")

    run(main())


def test_killed_child_is_respawned_and_serves_again() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker())
            old = (await m.request("info", "w")).data["pid"]
            os.kill(old, signal.SIGKILL)
            await eventually(lambda: len(events.auto_restart) == 1, "auto-restart event")
            restart = events.auto_restart[0]
            assert (restart.target, restart.signal, restart.attempt) == ("w", signal.SIGKILL, 1)
            await eventually(lambda: events.respawned("w"), "respawned")
            reply = await m.request("info", "w")
            new = reply.data["pid"]
            assert new != old
            assert new == m.get_process_stats("w").pid
            assert pid_running(new)
            stats = m.get_process_stats("w")
            assert stats.restarts == 1
            assert stats.status == "running"
            assert m.is_process_alive("w")

    run(main())


def test_request_while_the_child_is_respawned_is_not_lost() -> None:
    """A request sent while the master respawns a child (between its death and the new
    process being up) must be answered or fail at once, never sit until its timeout."""

    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            loop = asyncio.get_running_loop()
            calls: list[asyncio.Task[Reply[Any]]] = []

            def send() -> None:
                calls.append(loop.create_task(m.request("echo", "w", "hi", timeout=4000)))

            # Send in the loop step right after the death, while the respawn runs.
            m.on("auto-restart", lambda _: loop.call_soon(send))
            await m.spawn_child("w", peepsy_worker())
            os.kill(_pid(m, "w"), signal.SIGKILL)
            await eventually(lambda: bool(calls), "request sent")
            started = time.monotonic()
            try:
                reply = await calls[0]
            except PeepsyProcessError:
                pass  # refused at once: acceptable
            else:
                assert reply.data == "hi"
            took = time.monotonic() - started
            await eventually(lambda: events.respawned("w"), "respawned")
            assert took < 2.5, f"the request waited {took:.1f} s, for its timeout"

    run(main())


def test_retries_move_requests_to_the_other_group_member() -> None:
    async def main() -> None:
        async with Master(retry_delay=50) as m:
            # w1 stays down once killed, so every retry has to go to w2.
            await m.spawn_child("w1", peepsy_worker("concurrent"), group="g", auto_restart=False)
            await m.spawn_child("w2", peepsy_worker("concurrent"), group="g")
            calls = [
                asyncio.ensure_future(m.request("sleep", "g", 1500, timeout=60_000, retries=2))
                for _ in range(6)
            ]
            await eventually(
                lambda: m.get_group_stats("g").active_requests == 6, "all six in flight"
            )
            on_w1 = m.get_process_stats("w1").requests_active
            assert on_w1 >= 2  # round-robin spread them
            await asyncio.sleep(0.2)
            started = time.monotonic()
            os.kill(_pid(m, "w1"), signal.SIGKILL)
            replies: list[Reply[Any]] = await asyncio.gather(*calls)
            elapsed = time.monotonic() - started
            assert [r.data for r in replies] == [1500] * 6
            assert {r.target for r in replies} == {"w2"}
            assert elapsed < 10
            assert m.get_process_stats("w1").status == "stopped"
            assert m.get_process_stats("w2").requests_handled == 6
            group = m.get_group_stats("g")
            assert (group.active_requests, group.queued_requests) == (0, 0)

    run(main())


def test_restarted_group_member_takes_requests_again() -> None:
    async def main() -> None:
        # Retries wait long enough for w1's respawn to be over (a request sent while it
        # runs is lost: see test_request_while_the_child_is_respawned_is_not_lost).
        async with Master(retry_delay=300) as m:
            events = Events(m)
            await m.spawn_child("w1", peepsy_worker("concurrent"), group="g")
            await m.spawn_child("w2", peepsy_worker("concurrent"), group="g")
            calls = [
                asyncio.ensure_future(m.request("sleep", "g", 500, timeout=60_000, retries=2))
                for _ in range(4)
            ]
            await eventually(lambda: m.get_group_stats("g").active_requests == 4, "in flight")
            await asyncio.sleep(0.1)
            os.kill(_pid(m, "w1"), signal.SIGKILL)
            assert [r.data for r in await asyncio.gather(*calls)] == [500] * 4
            await eventually(lambda: events.respawned("w1"), "w1 back")
            assert [e.target for e in events.auto_restart] == ["w1"]
            replies = await asyncio.gather(*(m.request("echo", "g", i) for i in range(10)))
            assert [r.data for r in replies] == list(range(10))
            assert {r.target for r in replies} == {"w1", "w2"}

    run(main())


def test_restart_intensity_gives_up_with_status_failed() -> None:
    async def main() -> None:
        async with Master(max_restarts=3, restart_window=30_000) as m:
            events = Events(m)
            await m.spawn_child("crashy", [PYTHON, "-c", "raise SystemExit(3)"])
            await eventually(lambda: len(events.restart_failed) == 1, "restart-failed", 10)
            await asyncio.sleep(0.5)  # nothing more happens after giving up
            assert len(events.auto_restart) == 3
            assert [e.attempt for e in events.auto_restart] == [1, 2, 3]
            assert all(e.code == 3 for e in events.auto_restart)
            assert len(events.exit) == 4  # the first run and three restarts
            assert len(events.restart_failed) == 1
            failed = events.restart_failed[0]
            assert (failed.target, failed.restarts, failed.window) == ("crashy", 3, 30_000)
            stats = m.get_process_stats("crashy")
            assert stats.status == "failed"
            assert stats.restarts == 3
            assert not m.is_process_alive("crashy")
            with pytest.raises(PeepsyProcessError):
                await m.request("echo", "crashy", 1, timeout=1000)

    run(main())


def test_auto_restart_false_per_child_leaves_it_stopped() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker(), auto_restart=False)
            await m.spawn_child("other", peepsy_worker())
            os.kill(_pid(m, "w"), signal.SIGKILL)
            await eventually(lambda: len(events.exit) == 1, "exit event")
            await asyncio.sleep(0.3)
            assert events.auto_restart == []
            assert m.get_process_stats("w").status == "stopped"
            assert not m.is_process_alive("w")
            with pytest.raises(PeepsyProcessError):
                await m.request("echo", "w", 1)
            assert (await m.request("echo", "other", 1)).data == 1

    run(main())


def test_auto_restart_false_per_group_leaves_members_stopped() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            m.configure_group("g", auto_restart=False)
            await m.spawn_child("w1", peepsy_worker(), group="g")
            await m.spawn_child("w2", peepsy_worker(), group="g")
            os.kill(_pid(m, "w1"), signal.SIGKILL)
            await eventually(lambda: len(events.exit) == 1, "exit event")
            await asyncio.sleep(0.3)
            assert events.auto_restart == []
            assert m.get_process_stats("w1").status == "stopped"
            assert m.get_group_stats("g").auto_restart is False
            replies = await asyncio.gather(*(m.request("echo", "g", i) for i in range(4)))
            assert {r.target for r in replies} == {"w2"}

    run(main())


def test_child_exiting_by_itself_fails_its_request_and_restarts() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker())
            with pytest.raises(PeepsyProcessError) as caught:
                await m.request("exit", "w", 7, timeout=60_000)
            assert caught.value.returncode == 7
            await eventually(lambda: len(events.auto_restart) == 1, "auto-restart")
            assert events.auto_restart[0].code == 7
            await eventually(lambda: events.respawned("w"), "respawned")
            assert (await m.request("add", "w", {"a": 1, "b": 1})).data == 2

    run(main())


def test_graceful_shutdown_during_a_restart_leaves_nothing_running() -> None:
    """A master that shuts down while it respawns a child must be done when
    graceful_shutdown returns: no task of its own still running, no child process left
    (SHUT-3). Otherwise a program that ends right after it (asyncio.run) leaves the new
    child unreaped."""

    async def main() -> None:
        ours = asyncio.all_tasks()
        theirs = set(live_children())  # children of the session's, not this test's
        m = Master()
        loop = asyncio.get_running_loop()
        after: asyncio.Future[tuple[set[asyncio.Task[Any]], list[int]]] = loop.create_future()

        async def shut_down() -> None:
            await m.graceful_shutdown()
            # What is left the moment graceful_shutdown returns.
            current = asyncio.current_task()
            left = {t for t in asyncio.all_tasks() if t not in ours and t is not current}
            after.set_result((left, live_children(excluding=theirs)))

        # Start the shutdown in the loop step right after the death, while the master
        # respawns the child.
        m.on("auto-restart", lambda _: loop.call_soon(loop.create_task, shut_down()))
        await m.spawn_child("w", peepsy_worker())
        os.kill(_pid(m, "w"), signal.SIGKILL)
        tasks, children = await after
        # Let whatever was left finish before judging, so it does not spill into the
        # next test.
        await eventually(lambda: asyncio.all_tasks() - ours == set(), "tasks finish", 5)
        await eventually(lambda: live_children(excluding=theirs) == [], "children gone", 5)
        assert tasks == set(), tasks
        assert children == []

    run(main())
