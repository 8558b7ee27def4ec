"""Health by heartbeat (HB-1..3): silence is judged only for children that promised
heartbeats (Node defect 9), and a busy handler never looks like a dead child (Node
defect 6)."""

from __future__ import annotations

import asyncio

from peepsy import Master
from tests.process._support import Events, eventually, peepsy_worker, raw_worker, run

HEARTBEAT_MS = 200
MISSES = 3  # a child that heartbeated is unhealthy after 600 ms of silence


def fast_master() -> Master:
    return Master(heartbeat_interval=HEARTBEAT_MS, heartbeat_miss_threshold=MISSES)


def test_child_that_never_heartbeats_is_left_alone() -> None:
    """Like an unmodified Node peepsy 1.0.1 child: answers, never sends a HEARTBEAT."""

    async def main() -> None:
        async with fast_master() as m:
            events = Events(m)
            await m.spawn_child("quiet", raw_worker())
            pid = (await m.request("pid", "quiet")).data
            await asyncio.sleep(HEARTBEAT_MS * MISSES * 3 / 1000)  # three whole windows
            assert events.heartbeat_missed == []
            assert events.exit == []
            stats = m.get_process_stats("quiet")
            assert (stats.status, stats.pid, stats.restarts) == ("running", pid, 0)
            assert stats.last_heartbeat_at is None
            assert m.get_unhealthy_processes() == []
            assert (await m.request("pid", "quiet")).data == pid

    run(main())


def test_child_that_stops_heartbeating_is_killed_and_restarted() -> None:
    """It heartbeats, then falls silent while still alive and answering: caught."""

    async def main() -> None:
        async with fast_master() as m:
            events = Events(m)
            await m.spawn_child("stuck", raw_worker("--beats", "3", "--beat-ms", "100"))
            old = (await m.request("pid", "stuck")).data
            await eventually(lambda: len(events.heartbeat_missed) >= 1, "heartbeat-missed", 5)
            missed = events.heartbeat_missed[0]
            assert missed.target == "stuck"
            assert missed.silent_for > HEARTBEAT_MS * MISSES
            await eventually(lambda: len(events.auto_restart) >= 1, "auto-restart", 5)
            assert events.exit[0].pid == old
            assert not events.exit[0].expected
            await eventually(lambda: events.respawned("stuck"), "respawned", 5)
            new = (await m.request("pid", "stuck")).data
            assert new != old
            assert m.get_process_stats("stuck").restarts >= 1

    run(main())


def test_stopped_heartbeats_without_auto_restart_mark_it_unhealthy() -> None:
    async def main() -> None:
        async with fast_master() as m:
            events = Events(m)
            await m.spawn_child(
                "stuck", raw_worker("--beats", "2", "--beat-ms", "100"), auto_restart=False
            )
            await eventually(lambda: len(events.heartbeat_missed) == 1, "heartbeat-missed", 5)
            assert m.get_unhealthy_processes() == ["stuck"]
            assert m.get_process_stats("stuck").status == "unhealthy"
            await asyncio.sleep(0.3)
            assert events.exit == []  # not killed: nobody would restart it

    run(main())


def test_idle_peepsy_child_heartbeats_at_the_interval_init_gives() -> None:
    """A Child built without an interval adopts INIT's heartbeatInterval (INIT-2) from
    the start: an idle one must never look silent to its master."""

    async def main() -> None:
        async with fast_master() as m:
            events = Events(m)
            await m.spawn_child("idle", peepsy_worker())
            pid = (await m.request("info", "idle")).data["pid"]
            samples: list[int | None] = []
            for _ in range(int(HEARTBEAT_MS * MISSES * 3 / 100)):  # three whole windows
                samples.append(m.get_process_stats("idle").last_heartbeat_at)
                await asyncio.sleep(0.1)
            assert events.heartbeat_missed == []
            assert events.exit == []
            assert m.get_process_stats("idle").pid == pid
            _assert_heartbeats_flowed(samples)

    run(main())


def _assert_heartbeats_flowed(samples: list[int | None]) -> None:
    beats = [s for s in samples if s is not None]
    assert len(set(beats)) >= 3, f"heartbeats stopped while the handler ran: {samples}"


async def _busy_handler_stays_healthy(action: str) -> None:
    async with fast_master() as m:
        events = Events(m)
        # The interval is fixed in the Child too, apart from test_idle_... below.
        await m.spawn_child("busy", peepsy_worker("sequential", heartbeat=HEARTBEAT_MS))
        pid = (await m.request("info", "busy")).data["pid"]
        await eventually(
            lambda: m.get_process_stats("busy").last_heartbeat_at is not None, "first heartbeat"
        )
        block_ms = HEARTBEAT_MS * MISSES * 3  # three whole windows
        call = asyncio.ensure_future(m.request(action, "busy", block_ms, timeout=20_000))
        samples: list[int | None] = []
        while not call.done():
            samples.append(m.get_process_stats("busy").last_heartbeat_at)
            await asyncio.sleep(HEARTBEAT_MS / 2 / 1000)
        reply = await call
        assert reply.data == block_ms
        assert events.heartbeat_missed == []
        assert events.exit == []
        stats = m.get_process_stats("busy")
        assert (stats.status, stats.pid, stats.restarts) == ("running", pid, 0)
        _assert_heartbeats_flowed(samples)


def test_sync_handler_blocking_for_several_windows_stays_healthy() -> None:
    run(_busy_handler_stays_healthy("block"))


def test_async_handler_blocking_the_event_loop_stays_healthy() -> None:
    run(_busy_handler_stays_healthy("block_loop"))


def test_cpu_bound_handler_stays_healthy() -> None:
    run(_busy_handler_stays_healthy("spin"))
