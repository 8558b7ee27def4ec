"""Issue 10: no request into a black hole (the master's side, with in-memory children).

A member that holds a request past its deadline leaves its group's rotation until it
answers; least-busy counts what a child says it holds and takes ties in turn; a
restarted member is sent nothing before it is ready; a request for a child or a group
with no member in service waits for one within its own timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from peepsy import (
    AutoRestartEvent,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
)
from peepsy.master import RearmEvent, RecoveredEvent, StalledEvent
from peepsy.master import _badlines as badlines_module
from peepsy.protocol import RequestReceived
from tests.master._support import Farm, Peer, echo, hold, run, settle, until


def hold_w1(peer: Peer, request: RequestReceived) -> None:
    """w1 hangs (answers nothing); every other peer echoes."""
    if peer.target != "w1":
        echo(peer, request)


class Recorded:
    def __init__(self, master: Any) -> None:
        self.stalled: list[StalledEvent] = []
        self.recovered: list[RecoveredEvent] = []
        master.on("stalled", self.stalled.append)
        master.on("recovered", self.recovered.append)


# --- least-busy ----------------------------------------------------------------------------


def test_least_busy_takes_ties_in_turn() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", strategy="least-busy")
            for name in ("w1", "w2", "w3"):
                await farm.spawn(master, name, "g")
            targets = [(await master.request("x", "g", i)).target for i in range(6)]
            # Before: every one went to w1 (ties broke toward the first member).
            assert sorted(targets) == ["w1", "w1", "w2", "w2", "w3", "w3"]

    run(main())


def test_least_busy_counts_what_the_child_says_it_holds() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", strategy="least-busy")
            w1 = await farm.spawn(master, "w1", "g")
            await farm.spawn(master, "w2", "g")
            w1.heartbeat(active=2)  # e.g. requests we gave up on, still running there
            await until(lambda: master.get_process_stats("w1").reported_active == 2)
            targets = {(await master.request("x", "g", i)).target for i in range(5)}
            assert targets == {"w2"}
            w1.heartbeat(active=0)
            await until(lambda: master.get_process_stats("w1").reported_active == 0)
            targets = {(await master.request("x", "g", i)).target for i in range(4)}
            assert targets == {"w1", "w2"}

    run(main())


# --- stalls --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["round-robin", "random", "least-busy"])
def test_a_member_holding_a_request_past_its_deadline_leaves_the_rotation(
    strategy: str,
) -> None:
    async def main() -> None:
        farm = Farm(auto=hold_w1)
        async with farm.master(stall_grace=30) as master:
            events = Recorded(master)
            master.configure_group("g", strategy=strategy)  # type: ignore[arg-type]
            w1 = await farm.spawn(master, "w1", "g")
            await farm.spawn(master, "w2", "g")
            assert master.get_process_stats("w1").in_rotation
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "hung", timeout=20)
            await until(lambda: len(events.stalled) == 1)
            assert (events.stalled[0].target, events.stalled[0].action) == ("w1", "x")
            assert events.stalled[0].overdue_for >= 30
            stats = master.get_process_stats("w1")
            assert (stats.status, stats.stalled, stats.in_rotation) == ("running", True, False)
            replies = [await master.request("x", "g", i, timeout=5000) for i in range(8)]
            assert {r.target for r in replies} == {"w2"}  # before: w1 took its share
            # Any answer brings it back: here, the late one.
            w1.auto = echo
            w1.reply(w1.requests[0], data="late")
            await until(lambda: len(events.recovered) == 1)
            assert (events.recovered[0].target, events.recovered[0].reason) == ("w1", "answered")
            assert master.get_process_stats("w1").in_rotation
            for i in range(20):
                if (await master.request("x", "g", i)).target == "w1":
                    break
            else:
                raise AssertionError("w1 never came back into the rotation")

    run(main())


def test_an_answer_to_another_request_ends_a_stall() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(stall_grace=30) as master:
            events = Recorded(master)
            w1 = await farm.spawn(master, "w1", "g", mode="concurrent")
            other = asyncio.ensure_future(master.request("x", "w1", "other", timeout=60_000))
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "hung", timeout=20)
            await until(lambda: len(events.stalled) == 1)
            w1.reply(next(r for r in w1.requests if r.data == "other"), data="ok")
            assert (await other).data == "ok"
            assert [e.reason for e in events.recovered] == ["answered"]
            assert master.get_process_stats("w1").in_rotation

    run(main())


def test_an_answer_within_the_grace_is_no_stall() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(stall_grace=60_000) as master:
            events = Recorded(master)
            w1 = await farm.spawn(master, "w1", "g")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "slow", timeout=20)
            w1.reply(w1.requests[0], data="late")
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            assert events.stalled == events.recovered == []  # type: ignore[comparison-overlap]
            assert master.get_process_stats("w1").in_rotation

    run(main())


def test_a_stalled_member_whose_process_ends_is_back_in_rotation() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(stall_grace=30) as master:
            events = Recorded(master)
            w1 = await farm.spawn(master, "w1", "g")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "hung", timeout=20)
            await until(lambda: len(events.stalled) == 1)
            w1.exit(1)
            await until(lambda: len(events.recovered) == 1)
            assert events.recovered[0].reason == "exited"
            await until(lambda: len(farm.incarnations("w1")) == 2)
            stats = master.get_process_stats("w1")
            assert (stats.stalled, stats.restarts) == (False, 1)

    run(main())


@pytest.mark.parametrize("strategy", ["round-robin", "least-busy"])
def test_with_every_member_stalled_a_request_waits_for_one_within_its_timeout(
    strategy: str,
) -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(stall_grace=30) as master:
            events = Recorded(master)
            master.configure_group("g", strategy=strategy)  # type: ignore[arg-type]
            w1 = await farm.spawn(master, "w1", "g")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "hung", timeout=20)
            await until(lambda: len(events.stalled) == 1)
            with pytest.raises(PeepsyTimeoutError, match="no member in rotation"):
                await master.request("x", "g", "short", timeout=50)
            waiting = asyncio.ensure_future(master.request("x", "g", "waits", timeout=60_000))
            await settle()
            assert not waiting.done()
            assert [r.data for r in w1.requests] == ["hung"]
            w1.auto = echo
            w1.reply(w1.requests[0], data="late")
            assert (await waiting).data == "waits"

    run(main())


def test_a_request_waiting_for_a_member_fails_when_the_master_shuts_down() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        master = farm.master(stall_grace=30)
        events = Recorded(master)
        await farm.spawn(master, "w1", "g")
        with pytest.raises(PeepsyTimeoutError):
            await master.request("x", "w1", "hung", timeout=20)
        await until(lambda: len(events.stalled) == 1)
        waiting = asyncio.ensure_future(master.request("x", "g", "waits", timeout=60_000))
        await settle()
        await master.graceful_shutdown(timeout=100)
        with pytest.raises(PeepsyShutdownError):
            await waiting

    run(main())


def test_a_group_with_no_member_that_can_come_back_fails_at_once() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            w1 = await farm.spawn(master, "w1", "g", auto_restart=False)
            w1.exit(1)
            await until(lambda: master.get_process_stats("w1").status == "stopped")
            with pytest.raises(PeepsyProcessError, match="no running member in group g"):
                await master.request("x", "g", timeout=60_000)

    run(main())


# --- readiness after a restart (9a) ------------------------------------------------------


@pytest.mark.parametrize("signal", ["ready", "heartbeat"])
def test_a_restarted_member_gets_requests_once_it_speaks(signal: str) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(startup_grace=300_000) as master:
            first = await farm.spawn(master, "w1", "g")
            assert master.get_process_stats("w1").ready  # a first spawn is not held back
            first.exit(1)
            await until(lambda: len(farm.incarnations("w1")) == 2)
            second = farm.peer("w1")
            await second.started.wait()
            await until(lambda: master.get_process_stats("w1").status == "running")
            assert not master.get_process_stats("w1").ready
            waiting = asyncio.ensure_future(master.request("x", "g", "after", timeout=60_000))
            await settle()
            assert second.requests == []  # not sent into its start-up
            if signal == "ready":
                second.ready(["x"])
            else:
                second.heartbeat()
            assert (await waiting).data == "after"
            assert master.get_process_stats("w1").ready

    run(main())


def test_a_restarted_member_that_never_speaks_is_ready_after_the_startup_grace() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(startup_grace=50) as master:
            first = await farm.spawn(master, "w1", "g")
            first.exit(1)
            await until(lambda: len(farm.incarnations("w1")) == 2)
            reply = await master.request("x", "g", "after", timeout=60_000)
            assert reply.data == "after"
            assert master.get_process_stats("w1").ready

    run(main())


def test_a_request_for_a_restarting_child_waits_for_it() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            first = await farm.spawn(master, "w1")
            sent: list[asyncio.Future[Any]] = []

            def on_restart(event: AutoRestartEvent) -> None:
                assert master.get_process_stats("w1").status == "restarting"
                sent.append(asyncio.ensure_future(master.request("x", "w1", "r", timeout=60_000)))

            master.on("auto-restart", on_restart)
            first.exit(1)
            await until(lambda: len(sent) == 1)
            # Before: PeepsyProcessError ("w1 is not running (restarting)") at once.
            assert (await sent[0]).data == "r"

    run(main())


def test_a_request_for_a_restarting_member_by_name_waits_for_it() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            first = await farm.spawn(master, "w1", "g")
            sent: list[asyncio.Future[Any]] = []
            master.on(
                "auto-restart",
                lambda e: sent.append(asyncio.ensure_future(master.request("x", "w1", "r"))),
            )
            first.exit(1)
            await until(lambda: len(sent) == 1)
            assert (await sent[0]).data == "r"

    run(main())


def test_a_request_for_a_restarting_child_times_out_within_its_own_timeout() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            first = await farm.spawn(master, "w1")
            farm.spawn_errors.append(OSError("no"))  # the restart fails: w1 is failed
            failures: list[BaseException] = []

            def on_restart(event: AutoRestartEvent) -> None:
                task = asyncio.ensure_future(master.request("x", "w1", timeout=60_000))
                task.add_done_callback(lambda t: failures.append(t.exception()))  # type: ignore[arg-type]

            master.on("auto-restart", on_restart)
            first.exit(1)
            await until(lambda: len(failures) == 1)
            assert isinstance(failures[0], PeepsyProcessError)
            assert "not running (failed)" in str(failures[0])

    run(main())


# --- bad lines (9b) -------------------------------------------------------------------------


def test_warnings_about_bad_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            w1 = await farm.spawn(master, "w1")
            for _ in range(200):
                w1.write(b"not json\n")
            await until(lambda: master.get_process_stats("w1").rejected_lines == 200)
            assert (await master.request("x", "w1", 1)).data == 1

    with caplog.at_level(logging.WARNING, logger="peepsy.master"):
        run(main())
    warned = [r.getMessage() for r in caplog.records if "bad line" in r.getMessage()]
    assert len(warned) == 10  # before: 200
    assert "only counted in rejected_lines" in warned[-1]


def test_a_request_waiting_for_a_restart_fails_when_the_master_shuts_down() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master()
        first = await farm.spawn(master, "w1")
        tasks: list[asyncio.Future[Any]] = []

        def on_restart(event: AutoRestartEvent) -> None:
            # The request waits for the restart; the shutdown comes before it is done.
            tasks.append(asyncio.ensure_future(master.request("x", "w1", timeout=60_000)))
            tasks.append(asyncio.ensure_future(master.graceful_shutdown(timeout=100)))

        master.on("auto-restart", on_restart)
        first.exit(1)
        await until(lambda: len(tasks) == 2)
        with pytest.raises(PeepsyShutdownError):
            await tasks[0]
        await tasks[1]

    run(main())


# --- the way back after the restart limit (8) ----------------------------------------------


def test_restart_child_refuses_unknown_targets_and_a_closing_master() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master()
        with pytest.raises(PeepsyNotFoundError):
            await master.restart_child("nobody")
        await master.graceful_shutdown()
        with pytest.raises(PeepsyShutdownError):
            await master.restart_child("nobody")

    run(main())


def test_restart_child_brings_a_failed_child_back_with_a_fresh_count() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(max_restarts=1) as master:
            rearms: list[RearmEvent] = []
            master.on("rearm", rearms.append)
            await farm.spawn(master, "w1")
            farm.peer("w1").exit(1)  # restarted: 1 of 1
            await until(lambda: len(farm.incarnations("w1")) == 2)
            await until(lambda: master.get_process_stats("w1").status == "running")
            farm.peer("w1").exit(1)  # over the limit
            await until(lambda: master.get_process_stats("w1").status == "failed")
            assert await master.restart_child("w1") == ["w1"]
            assert [(e.target, e.reason) for e in rearms] == [("w1", "manual")]
            assert master.get_process_stats("w1").status == "running"
            assert (await master.request("x", "w1", 5)).data == 5
            # The count starts afresh: one more death is restarted, not given up on.
            farm.peer("w1").exit(1)
            await until(lambda: len(farm.incarnations("w1")) == 4)
            await until(lambda: master.get_process_stats("w1").status == "running")

    run(main())


def test_a_cool_down_pending_at_shutdown_is_cancelled() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master(max_restarts=0, restart_cooldown=300_000)
        rearms: list[RearmEvent] = []
        master.on("rearm", rearms.append)
        w1 = await farm.spawn(master, "w1")
        w1.exit(1)
        await until(lambda: master.get_process_stats("w1").status == "failed")
        await master.graceful_shutdown()
        assert rearms == []
        assert master._supervisor._timers == {}

    run(main())


# --- a broken channel, at the master's level (2) ------------------------------------------


def test_a_broken_channel_fails_requests_at_once_and_stops_the_child_once() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            exits: list[Any] = []
            master.on("exit", exits.append)
            await farm.spawn(master, "w1", auto_restart=False)
            call = asyncio.ensure_future(master.request("x", "w1", timeout=60_000))
            await until(lambda: len(farm.peer("w1").requests) == 1)
            worker = master._workers["w1"]
            worker.channel_broken("closed its protocol stream")
            worker.channel_broken("closed its protocol stream")  # told twice: one stop
            with pytest.raises(PeepsyProcessError, match="closed its protocol stream before"):
                await call
            await until(lambda: len(exits) == 1)
            assert exits[0].failed_requests == 1
            assert master.get_process_stats("w1").status == "stopped"
            worker.channel_broken("late")  # no process any more: nothing to do
            assert len(exits) == 1

    run(main())


def test_bad_line_warnings_resume_after_their_window(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            w1 = await farm.spawn(master, "w1")
            # The worker's clock, injected: the window passes when the test says so.
            clock = [1000.0]
            master._workers["w1"]._loop_time = lambda: clock[0]
            for _ in range(15):
                w1.write(b"not json\n")
            await until(lambda: master.get_process_stats("w1").rejected_lines == 15)
            clock[0] += badlines_module.BAD_LINE_WINDOW_S
            w1.write(b"not json\n")
            await until(lambda: master.get_process_stats("w1").rejected_lines == 16)

    with caplog.at_level(logging.WARNING, logger="peepsy.master"):
        run(main())
    warned = [r.getMessage() for r in caplog.records if "bad line" in r.getMessage()]
    assert len(warned) == 12
    assert warned[10] == "w1 sent 5 more bad lines"


def test_a_waiter_cancelled_in_the_same_pass_as_its_wake_is_left_alone() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(stall_grace=30) as master:
            events = Recorded(master)
            await farm.spawn(master, "w1", "g")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "w1", "hung", timeout=20)
            await until(lambda: len(events.stalled) == 1)
            waiting = [
                asyncio.ensure_future(master.request("x", "g", i, timeout=60_000)) for i in (1, 2)
            ]
            await settle()
            waiting[0].cancel()
            master._router.changed(master._workers["w1"])
            with pytest.raises(asyncio.CancelledError):
                await waiting[0]
            await settle()
            assert not waiting[1].done()  # woken, looked again, waits on
            farm.peer("w1").auto = echo
            farm.peer("w1").reply(farm.peer("w1").requests[0], data="late")
            assert (await waiting[1]).data == 2

    run(main())


def test_a_broken_channel_of_an_unhealthy_child_stops_it_too() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(heartbeat_interval=50, heartbeat_miss_threshold=1) as master:
            w1 = await farm.spawn(master, "w1", auto_restart=False)
            w1.heartbeat()  # one promise, then silence
            await until(lambda: master.get_process_stats("w1").status == "unhealthy")
            master._workers["w1"].channel_broken("closed its protocol stream")
            await until(lambda: master.get_process_stats("w1").status == "stopped")

    run(main())
