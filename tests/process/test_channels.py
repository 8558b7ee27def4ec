"""Issue 10, with real processes: a child whose protocol channel ends, or refuses a
write, while its process lives on is gone for the master: its requests fail at once, it
is stopped (SIGTERM, then SIGKILL) and restarted as any death is. Hung members leave
their group's rotation; the restart limit has a way back."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time

import pytest

from peepsy import Master, PeepsyProcessError, PeepsyTimeoutError
from peepsy.transport._node_ipc import _ChannelProtocol, _ProcessWatch
from peepsy.transport._process import EXIT_GRACE_S, _StdioWatch
from tests.process._support import (
    PYTHON,
    WORKERS,
    Events,
    eventually,
    peepsy_worker,
    pid_running,
    run,
)

NODE = shutil.which("node")


def channel_worker(*flags: str) -> list[str]:
    return [PYTHON, str(WORKERS / "channel_worker.py"), *flags]


@pytest.mark.parametrize("ignore_term", [False, True])
def test_a_child_that_closes_its_stdout_and_lives_on_is_stopped_and_restarted(
    ignore_term: bool,
) -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            flags = ["--ignore-term"] if ignore_term else []
            await m.spawn_child("w", channel_worker(*flags))
            pid = m.get_process_stats("w").pid
            assert pid is not None
            assert (await m.request("echo", "w", 1)).data == 1
            started = time.monotonic()
            with pytest.raises(PeepsyProcessError, match="closed its protocol stream") as caught:
                await m.request("close_stdout", "w", timeout=60_000)
            # Before: it stayed "running" and the request waited its whole 60 s.
            assert time.monotonic() - started < 10
            assert caught.value.target == "w"
            await eventually(lambda: len(events.exit) == 1, "exit")
            wanted = signal.SIGKILL if ignore_term else signal.SIGTERM
            assert (events.exit[0].signal, events.exit[0].failed_requests) == (wanted, 1)
            assert not pid_running(pid)
            assert any("closed its protocol stream" in str(e.error) for e in events.error)
            await eventually(lambda: events.respawned("w"), "respawned")
            assert (await m.request("echo", "w", 2)).data == 2

    run(main())


def test_a_write_to_a_child_that_closed_its_stdin_fails_at_once() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", channel_worker("--close-stdin"), auto_restart=False)
            await eventually(lambda: m.get_process_stats("w").actions is not None, "READY")
            started = time.monotonic()
            with pytest.raises(PeepsyProcessError, match="stdin"):
                await m.request("echo", "w", 1, timeout=60_000)
            # Before: the line was dropped and the request waited its whole timeout.
            assert time.monotonic() - started < 10
            await eventually(lambda: len(events.exit) == 1, "exit")
            assert events.exit[0].signal == signal.SIGTERM
            assert m.get_process_stats("w").status == "stopped"

    run(main())


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_a_node_ipc_worker_that_disconnects_and_lives_on_is_stopped_and_restarted() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            argv = [str(NODE), str(WORKERS / "ipc_disconnect_worker.js")]
            await m.spawn_child("n", argv, transport="node-ipc")
            assert (await m.request("echo", "n", 1)).data == 1
            started = time.monotonic()
            with pytest.raises(PeepsyProcessError, match="closed its protocol stream"):
                await m.request("disconnect", "n", timeout=60_000)
            assert time.monotonic() - started < 10
            await eventually(lambda: events.respawned("n"), "respawned")
            assert events.exit[0].signal == signal.SIGTERM
            assert (await m.request("echo", "n", 2)).data == 2

    run(main())


def test_a_hung_sequential_member_leaves_the_rotation() -> None:
    # The case: a handler that never returns, in a child that heartbeats on.
    async def main() -> None:
        m = Master(heartbeat_interval=100, stall_grace=200)
        try:
            events = Events(m)
            m.configure_group("g", strategy="least-busy")
            await m.spawn_child("hung", peepsy_worker("sequential"), group="g")
            await m.spawn_child("ok", peepsy_worker("sequential"), group="g")
            with pytest.raises(PeepsyTimeoutError):
                await m.request("sleep", "hung", 60_000, timeout=100)
            await eventually(lambda: len(events.stalled) == 1, "stalled")
            await eventually(
                lambda: m.get_process_stats("hung").reported_active == 1, "busy reported"
            )
            assert m.get_process_stats("hung").status == "running"  # it heartbeats on
            targets = [(await m.request("echo", "g", i, timeout=10_000)).target for i in range(40)]
            assert targets == ["ok"] * 40  # before: 40 of 40 to "hung"
        finally:
            await m.graceful_shutdown(timeout=100)  # "hung" is still in its handler

    run(main())


def test_members_failed_over_the_restart_limit_come_back_on_request() -> None:
    async def main() -> None:
        async with Master(max_restarts=0) as m:
            events = Events(m)
            await m.spawn_child("a", peepsy_worker(), group="g")
            await m.spawn_child("b", peepsy_worker(), group="g")
            for target in ("a", "b"):
                with pytest.raises(PeepsyProcessError):
                    await m.request("exit", target, 1)
            await eventually(lambda: len(events.restart_failed) == 2, "restart-failed")
            with pytest.raises(PeepsyProcessError, match="no running member"):
                await m.request("echo", "g", 1)
            assert sorted(await m.restart_child("g")) == ["a", "b"]
            assert sorted((e.target, e.reason) for e in events.rearm) == [
                ("a", "manual"),
                ("b", "manual"),
            ]
            assert (await m.request("echo", "g", 1, timeout=10_000)).data == 1
            assert await m.restart_child("g") == []  # running members are left alone

    run(main())


def test_a_failed_child_is_re_armed_after_the_cool_down() -> None:
    async def main() -> None:
        async with Master(max_restarts=0, restart_cooldown=200) as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker())
            with pytest.raises(PeepsyProcessError):
                await m.request("exit", "w", 1)
            await eventually(lambda: len(events.rearm) == 1, "re-armed")
            assert events.rearm[0].reason == "cooldown"
            await eventually(lambda: events.respawned("w"), "respawned")
            assert (await m.request("add", "w", {"a": 1, "b": 2})).data == 3

    run(main())


class _Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def data_received(self, data: bytes) -> None:  # pragma: no cover - not fed here
        self.calls.append(("data", data))

    def stderr_received(self, data: bytes) -> None:  # pragma: no cover - not fed here
        self.calls.append(("stderr", data))

    def eof_received(self) -> None:
        self.calls.append(("eof", None))

    def channel_broken(self, reason: str) -> None:
        self.calls.append(("broken", reason))

    def process_exited(self, returncode: int | None) -> None:
        self.calls.append(("exit", returncode))


def test_a_failed_write_breaks_the_channel_once_and_an_own_close_does_not() -> None:
    async def main() -> None:
        listener = _Listener()
        watch = _StdioWatch(listener)
        watch.pipe_connection_lost(0, None)  # we closed its stdin ourselves
        assert listener.calls == []
        watch.pipe_connection_lost(0, BrokenPipeError(32, "Broken pipe"))
        watch.channel_lost("has its stdin closed")  # told once
        assert listener.calls == [
            ("broken", "refused a write to its stdin ([Errno 32] Broken pipe)")
        ]
        ipc_listener = _Listener()
        ipc_watch = _ProcessWatch(ipc_listener)
        _ChannelProtocol(ipc_watch).connection_lost(ConnectionResetError("reset"))
        assert ipc_listener.calls[:2] == [
            ("broken", "refused a write to its IPC channel (reset)"),
            ("eof", None),
        ]

    run(main())


def test_an_exit_right_after_the_end_of_the_stream_is_no_broken_channel() -> None:
    async def main() -> None:
        listener = _Listener()
        watch = _StdioWatch(listener)
        watch.pipe_connection_lost(1, None)
        watch.process_exited()  # within EXIT_GRACE_S, as a child's own exit is
        await asyncio.sleep(EXIT_GRACE_S * 2)  # the check would have fired by now
        assert listener.calls == [("eof", None), ("exit", None)]

    run(main())
