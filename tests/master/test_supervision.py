"""Supervision: statistics, events, health (HB-2, HB-3), restarts and their intensity,
stopping children (SHUT-3)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from peepsy import (
    AutoRestartEvent,
    ErrorEvent,
    ExitEvent,
    HeartbeatMissedEvent,
    PeepsyNotFoundError,
    PeepsyProcessError,
    RestartFailedEvent,
    SpawnEvent,
)
from peepsy.protocol import Shutdown
from tests.master._support import Farm, hold, run, settle, until


def now_ms() -> int:
    return int(time.time() * 1000)


# --- statistics -------------------------------------------------------------------------


def test_fresh_child_stats() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            stats = await master.spawn_child("w1", ["peer", "w1"], "concurrent", "g")
            assert stats.target == "w1"
            # Running once the process is up: a child owes no message to prove it (a Node
            # peepsy worker says nothing until asked).
            assert (stats.group, stats.mode, stats.status) == ("g", "concurrent", "running")
            assert stats.pid is not None
            assert (stats.requests_handled, stats.requests_active, stats.errors) == (0, 0, 0)
            assert (stats.timeouts, stats.restarts, stats.rejected_lines) == (0, 0, 0)
            assert (stats.late_responses, stats.average_response_time) == (0, 0.0)
            assert (stats.last_activity, stats.last_heartbeat_at, stats.actions) == (
                None,
                None,
                None,
            )
            assert master.targets == ["w1"]
            assert master.get_stderr("w1") == []
            assert master.is_process_alive("w1")

    run(main())


def test_ready_records_actions_and_activity() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            await settle()
            assert master.get_process_stats("w1").status == "running"
            assert master.get_process_stats("w1").actions is None
            before = now_ms()
            peer.ready(["add", "echo"])
            await until(lambda: master.get_process_stats("w1").actions is not None)
            stats = master.get_process_stats("w1")
            assert stats.actions == ("add", "echo")
            assert stats.last_activity is not None
            assert before <= stats.last_activity <= now_ms()
            assert stats.last_heartbeat_at is None

    run(main())


def test_heartbeat_time_is_recorded() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            before = now_ms()
            peer.heartbeat(active=2)
            await until(lambda: master.get_process_stats("w1").last_heartbeat_at is not None)
            at = master.get_process_stats("w1").last_heartbeat_at
            assert at is not None
            assert before <= at <= now_ms()

    run(main())


def test_requests_handled_errors_and_active_counts() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            calls = [asyncio.ensure_future(master.request("x", "w1", i)) for i in range(3)]
            await until(lambda: len(peer.requests) == 3)
            assert master.get_active_requests_count() == 3
            assert master.active_requests == 3
            assert master.get_process_stats("w1").requests_active == 3
            peer.reply(peer.requests[0])
            peer.reply(peer.requests[1], 500)
            peer.reply(peer.requests[2], 201)
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert [getattr(r, "status", None) for r in results] == [200, 500, 201]
            stats = master.get_process_stats("w1")
            assert (stats.requests_handled, stats.errors, stats.requests_active) == (3, 1, 0)
            assert master.get_active_requests_count() == 0

    run(main())


def test_average_response_time_is_an_ema_with_alpha_0_2() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            loop = asyncio.get_running_loop()

            async def timed(hold_for: float) -> float:
                started = loop.time()
                call = asyncio.ensure_future(master.request("x", "w1"))
                request = await peer.next_request()
                await asyncio.sleep(hold_for)
                peer.reply(request)
                await call
                return (loop.time() - started) * 1000

            slow = await timed(0.2)
            first = master.get_process_stats("w1").average_response_time
            # The first answer sets the average: the master's own measurement lies within
            # the test's.
            assert 195 <= first <= slow + 0.001
            quick = await timed(0)
            second = master.get_process_stats("w1").average_response_time
            # avg' = avg + 0.2 * (elapsed - avg) = 0.8 avg + 0.2 elapsed, 0 <= elapsed <= quick
            assert 0.8 * first - 0.002 <= second <= 0.8 * first + 0.2 * quick + 0.002
            slow = await timed(0.2)
            third = master.get_process_stats("w1").average_response_time
            assert 0.8 * second + 0.2 * 195 <= third <= 0.8 * second + 0.2 * slow + 0.002

    run(main())


# --- events ----------------------------------------------------------------------------------


def test_spawn_and_exit_events() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            spawns: list[SpawnEvent] = []
            exits: list[ExitEvent] = []
            master.on("spawn", spawns.append)
            master.on("exit", exits.append)
            stats = await master.spawn_child("w1", ["peer", "w1"], group="g")
            assert spawns == [SpawnEvent("w1", stats.pid, "g", False)]
            code = await master.shutdown_child("w1", timeout=1000)
            assert code == 0
            assert exits == [ExitEvent("w1", stats.pid, 0, None, True, 0)]

    run(main())


def test_unsubscribe_stops_the_callbacks() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            seen: list[str] = []
            unsubscribe = master.on("spawn", lambda event: seen.append(event.target))
            await farm.spawn(master, "w1")
            unsubscribe()
            unsubscribe()  # twice is harmless
            await farm.spawn(master, "w2")
            assert seen == ["w1"]

    run(main())


def test_a_raising_callback_is_logged_not_propagated(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            seen: list[str] = []

            def broken(event: SpawnEvent) -> None:
                raise RuntimeError("callback bug")

            master.on("spawn", broken)
            master.on("spawn", lambda event: seen.append(event.target))
            await farm.spawn(master, "w1")
            assert seen == ["w1"]
            assert (await master.request("echo", "w1", 1)).data == 1

    with caplog.at_level(logging.ERROR, logger="peepsy.master"):
        run(main())
    records = [r for r in caplog.records if "event callback raised" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "callback bug" in str(records[0].exc_info[1])


def test_async_callbacks_run_as_tasks_and_their_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            seen: list[str] = []

            async def note(event: SpawnEvent) -> None:
                await asyncio.sleep(0)
                seen.append(event.target)

            async def broken(event: SpawnEvent) -> None:
                await asyncio.sleep(0)
                raise RuntimeError("async callback bug")

            master.on("spawn", note)
            master.on("spawn", broken)
            await farm.spawn(master, "w1")
            await until(lambda: seen == ["w1"])
            await settle()

    with caplog.at_level(logging.ERROR, logger="peepsy.master"):
        run(main())
    records = [r for r in caplog.records if "async event callback raised" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "async callback bug" in str(records[0].exc_info[1])


def test_unknown_event_name_is_refused() -> None:
    master = Farm().master()
    with pytest.raises(ValueError, match="unknown event 'spawned'"):
        master.on("spawned", print)  # type: ignore[call-overload]


# --- restarts --------------------------------------------------------------------------------


def test_a_dead_child_is_restarted_with_events() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            spawns: list[SpawnEvent] = []
            restarts: list[AutoRestartEvent] = []
            exits: list[ExitEvent] = []
            master.on("spawn", spawns.append)
            master.on("auto-restart", restarts.append)
            master.on("exit", exits.append)
            first = await farm.spawn(master, "w1", "g")
            first.exit(7)
            await until(lambda: len(spawns) == 2)
            assert restarts == [AutoRestartEvent("w1", 7, None, 1)]
            assert exits[0].expected is False
            assert spawns[1].restart is True
            assert spawns[1].group == "g"
            assert spawns[1].pid != spawns[0].pid
            second = farm.peer("w1")
            assert second is not first
            await second.started.wait()
            # The new incarnation gets its own INIT, and requests.
            assert [init.target for init in second.inits] == ["w1"]
            assert (await master.request("echo", "w1", "again")).data == "again"
            stats = master.get_process_stats("w1")
            assert (stats.restarts, stats.pid) == (1, spawns[1].pid)

    run(main())


def test_restart_intensity_gives_up_with_status_failed() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(max_restarts=2, restart_window=60_000) as master:
            restarts: list[AutoRestartEvent] = []
            failed: list[RestartFailedEvent] = []
            master.on("auto-restart", restarts.append)
            master.on("restart-failed", failed.append)
            await farm.spawn(master, "w1")
            for count in (1, 2, 3):
                peer = farm.peer("w1")
                await peer.started.wait()
                peer.exit(1)
                await until(lambda: len(restarts) + len(failed) == count)  # noqa: B023
            assert [r.attempt for r in restarts] == [1, 2]
            assert failed == [RestartFailedEvent("w1", 2, 60_000)]
            assert len(farm.incarnations("w1")) == 3
            stats = master.get_process_stats("w1")
            assert (stats.status, stats.restarts) == ("failed", 2)
            assert not master.is_process_alive("w1")
            with pytest.raises(PeepsyProcessError, match=r"not running \(failed\)"):
                await master.request("echo", "w1")

    run(main())


def test_restarts_outside_the_window_do_not_count() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(max_restarts=1, restart_window=100) as master:
            restarts: list[AutoRestartEvent] = []
            master.on("auto-restart", restarts.append)
            await farm.spawn(master, "w1")
            for count in (1, 2):
                peer = farm.peer("w1")
                await peer.started.wait()
                await asyncio.sleep(0.15)
                peer.exit(1)
                await until(lambda: len(restarts) == count)  # noqa: B023
            assert [r.attempt for r in restarts] == [1, 1]
            await until(lambda: master.is_process_alive("w1"))
            assert master.get_process_stats("w1").restarts == 2

    run(main())


def test_no_restart_when_the_child_has_auto_restart_off() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            restarts: list[AutoRestartEvent] = []
            master.on("auto-restart", restarts.append)
            peer = await farm.spawn(master, "w1", auto_restart=False)
            peer.exit(1)
            await until(lambda: master.get_process_stats("w1").status == "stopped")
            await asyncio.sleep(0.02)
            assert restarts == []
            assert len(farm.incarnations("w1")) == 1

    run(main())


def test_no_restart_when_the_group_has_auto_restart_off() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", auto_restart=False)
            restarts: list[AutoRestartEvent] = []
            master.on("auto-restart", restarts.append)
            peer = await farm.spawn(master, "w1", "g")
            await farm.spawn(master, "w2")
            peer.exit(1)
            await until(lambda: master.get_process_stats("w1").status == "stopped")
            # A child outside the group still restarts.
            farm.peer("w2").exit(1)
            await until(lambda: len(restarts) == 1)
            assert restarts[0].target == "w2"
            assert len(farm.incarnations("w1")) == 1

    run(main())


def test_a_failed_restart_is_reported_as_an_error_event() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            peer = await farm.spawn(master, "w1")
            farm.spawn_errors.append(FileNotFoundError("gone"))
            peer.exit(1)
            await until(lambda: len(errors) == 1)
            assert errors[0].target == "w1"
            assert isinstance(errors[0].error, PeepsyProcessError)
            assert "could not start w1: gone" in str(errors[0].error)
            assert master.get_process_stats("w1").status == "failed"

    run(main())


def test_a_restart_that_fails_with_any_error_is_reported_and_not_running() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            peer = await farm.spawn(master, "w1")
            farm.spawn_errors.append(ValueError("bad env"))
            peer.exit(1)
            await until(lambda: master.get_process_stats("w1").status != "restarting")
            await settle()
            assert master.get_process_stats("w1").status == "failed"
            assert not master.is_process_alive("w1")
            assert len(errors) == 1
            assert "bad env" in str(errors[0].error)

    run(main())


def test_a_crashing_child_exits_with_code_1() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            exits: list[ExitEvent] = []
            master.on("exit", exits.append)
            peer = await farm.spawn(master, "w1", auto_restart=False)
            peer.crash()
            await until(lambda: len(exits) == 1)
            assert exits[0].returncode == 1

    run(main())


# --- health (HB-2, HB-3) ------------------------------------------------------------------------


def test_silence_after_a_heartbeat_marks_unhealthy_and_restarts() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(heartbeat_interval=30, heartbeat_miss_threshold=2) as master:
            missed: list[HeartbeatMissedEvent] = []
            exits: list[ExitEvent] = []
            master.on("heartbeat-missed", missed.append)
            master.on("exit", exits.append)
            peer = await farm.spawn(master, "w1")
            assert peer.inits[0].heartbeat_interval == 30
            before = now_ms()
            peer.heartbeat()
            await until(lambda: len(exits) == 1)
            assert missed[0].target == "w1"
            assert missed[0].silent_for >= 60
            assert missed[0].timestamp >= before
            assert (exits[0].signal, exits[0].expected) == (9, False)
            await until(lambda: len(farm.incarnations("w1")) == 2)

    run(main())


def test_an_unhealthy_child_without_auto_restart_stays_unhealthy_until_it_beats() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(heartbeat_interval=30, heartbeat_miss_threshold=2) as master:
            peer = await farm.spawn(master, "w1", "g", auto_restart=False)
            await farm.spawn(master, "w2", "g", auto_restart=False)
            peer.heartbeat()
            await until(lambda: master.get_unhealthy_processes() == ["w1"])
            assert master.get_process_stats("w1").status == "unhealthy"
            assert master.is_process_alive("w1")
            # Other messages are no heartbeat (HB-3).
            peer.ready(["x"])
            peer.write(b"garbage\n")
            await asyncio.sleep(0.1)
            assert master.get_unhealthy_processes() == ["w1"]
            # The group routes around it; a request by name still goes to it.
            replies = [await master.request("echo", "g", i) for i in range(3)]
            assert {r.target for r in replies} == {"w2"}
            assert (await master.request("echo", "w1", 1)).target == "w1"
            peer.heartbeat()
            await until(lambda: master.get_process_stats("w1").status == "running")
            assert master.get_unhealthy_processes() == []

    run(main())


def test_a_child_that_never_beats_is_never_unhealthy() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(heartbeat_interval=20, heartbeat_miss_threshold=1) as master:
            peer = await farm.spawn(master, "w1")
            peer.ready([])
            await asyncio.sleep(0.2)
            assert master.get_unhealthy_processes() == []
            assert master.get_process_stats("w1").status == "running"

    run(main())


# --- stopping (SHUT-3) ----------------------------------------------------------------------


def test_shutdown_child_sends_shutdown_and_forgets_the_child() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1", "g")
            await farm.spawn(master, "w2", "g")
            assert await master.shutdown_child("w1", timeout=1234) == 0
            shutdowns = [line for line in peer.lines if line["type"] == "SHUTDOWN"]
            assert shutdowns == [{"type": "SHUTDOWN", "timeout": 1234}]
            assert master.targets == ["w2"]
            assert list(master.get_group_stats("g").processes) == ["w2"]
            with pytest.raises(PeepsyNotFoundError):
                master.get_process_stats("w1")
            # The name is free again.
            await farm.spawn(master, "w1")

    run(main())


def test_shutdown_child_escalates_to_closing_input() -> None:
    async def main() -> None:
        farm = Farm(exit_on_shutdown=False)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            assert await master.shutdown_child("w1", timeout=50) == 0
            assert peer.shutdowns == 1
            assert peer.eof

    run(main())


def test_shutdown_child_escalates_to_terminate() -> None:
    async def main() -> None:
        farm = Farm(exit_on_shutdown=False, exit_on_eof=False)
        async with farm.master() as master:
            exits: list[ExitEvent] = []
            master.on("exit", exits.append)
            peer = await farm.spawn(master, "w1")
            assert await master.shutdown_child("w1", timeout=20) == -15
            assert peer.eof
            assert (exits[0].signal, exits[0].expected) == (15, True)

    run(main())


def test_shutdown_child_of_a_dead_child_returns_its_code() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1", auto_restart=False)
            peer.exit(4)
            await until(lambda: not master.is_process_alive("w1"))
            assert await master.shutdown_child("w1") == 4
            assert master.targets == []

    run(main())


def test_graceful_shutdown_stops_every_child() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master()
        exits: list[ExitEvent] = []
        master.on("exit", exits.append)
        for target in ("w1", "w2", "w3"):
            await farm.spawn(master, target)
        await master.graceful_shutdown(timeout=1000)
        assert sorted(e.target for e in exits) == ["w1", "w2", "w3"]
        assert all(e.expected and e.returncode == 0 for e in exits)
        assert all(p.shutdowns == 1 for p in farm.peers)
        assert master.targets == []
        await master.graceful_shutdown()  # again: nothing to do

    run(main())


def test_in_flight_requests_fail_when_their_child_is_stopped() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            call = asyncio.ensure_future(master.request("x", "w1"))
            await until(lambda: len(peer.requests) == 1)
            await master.shutdown_child("w1", timeout=500)
            with pytest.raises(PeepsyProcessError, match="w1 exited"):
                await call

    run(main())


def test_a_stopping_child_takes_no_new_requests() -> None:
    async def main() -> None:
        farm = Farm(exit_on_shutdown=False)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            stopping = asyncio.ensure_future(master.shutdown_child("w1", timeout=2000))
            await until(lambda: peer.shutdowns == 1)
            assert master.get_process_stats("w1").status == "stopping"
            with pytest.raises(PeepsyProcessError, match=r"not running \(stopping\)"):
                await master.request("echo", "w1")
            peer.exit(0)
            assert await stopping == 0

    run(main())


def test_shutdown_message_timeout_is_clamped_to_the_protocol_range() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            peer.exit_on_shutdown = False
            task: Any = asyncio.ensure_future(master.shutdown_child("w1", timeout=0))
            await until(lambda: peer.shutdowns == 1)
            shutdown = next(line for line in peer.lines if line["type"] == "SHUTDOWN")
            assert Shutdown.model_validate(shutdown).timeout == 1
            await task

    run(main())


def test_a_child_that_dies_as_the_master_shuts_down_is_not_restarted() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master()
        stopping: list[asyncio.Future[None]] = []
        # Shut down from the auto-restart callback: the restart, scheduled after it,
        # finds the master closing.
        master.on(
            "auto-restart",
            lambda event: stopping.append(asyncio.ensure_future(master.graceful_shutdown(1000))),
        )
        peer = await farm.spawn(master, "w1")
        peer.exit(1)
        await until(lambda: bool(stopping))
        await stopping[0]
        await settle()
        assert len(farm.incarnations("w1")) == 1
        assert master.targets == []

    run(main())
