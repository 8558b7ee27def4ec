"""Stopping real children (SHUT-1..3, STREAM-3): graceful drains, 503 for latecomers,
escalation for children that will not stop, and no child outliving its master."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from peepsy import Master, RemoteError
from tests.process._support import (
    PYTHON,
    TEST_LIMIT_S,
    WORKERS,
    Events,
    eventually,
    kill_if_running,
    peepsy_worker,
    pid_running,
    raw_worker,
    run,
    wait_pid_gone,
)


def test_shutdown_lets_running_request_finish_and_exits_0() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker("sequential"))
            pid = (await m.request("info", "w")).data["pid"]
            running = asyncio.ensure_future(m.request("sleep", "w", 1000, timeout=20_000))
            await asyncio.sleep(0.3)  # it is running at the child
            # Sequential: this one waits in the child's queue behind the first.
            queued = asyncio.ensure_future(m.request("echo", "w", "queued", timeout=20_000))
            await asyncio.sleep(0.1)
            code = await m.shutdown_child("w", timeout=10_000)
            assert code == 0
            reply = await running
            assert (reply.status, reply.data) == (200, 1000)
            # SHUT-1: what was still queued is refused with 503, not dropped.
            with pytest.raises(RemoteError) as caught:
                await queued
            assert caught.value.status == 503
            assert caught.value.remote_code == "PEEPSY_SHUTTING_DOWN"
            [exit_event] = events.exit
            assert (exit_event.returncode, exit_event.expected) == (0, True)
            assert events.auto_restart == []
            assert "w" not in m.targets
            assert not pid_running(pid)

    run(main())


def test_shutdown_right_behind_a_request_still_answers_it() -> None:
    """REQUEST and SHUTDOWN arrive together: the request was accepted first, so it runs
    and is answered before the child exits."""

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker("sequential"))
            await m.request("echo", "w", "warm-up")
            call = asyncio.ensure_future(m.request("sleep", "w", 300, timeout=20_000))
            await asyncio.sleep(0)  # the REQUEST is written
            assert await m.shutdown_child("w", timeout=10_000) == 0
            assert (await call).data == 300

    run(main())


def test_requests_during_shutdown_get_503() -> None:
    """SIGTERM starts a peepsy Child's graceful shutdown; what arrives meanwhile is
    refused with 503, the running request completes, and the child exits 0."""

    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker("concurrent"), auto_restart=False)
            pid = (await m.request("info", "w")).data["pid"]
            running = asyncio.ensure_future(m.request("sleep", "w", 1500, timeout=20_000))
            await asyncio.sleep(0.3)
            os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.3)  # the child has begun to stop
            with pytest.raises(RemoteError) as caught:
                await m.request("echo", "w", "too late", timeout=5000)
            assert caught.value.status == 503
            assert (await running).data == 1500
            await eventually(lambda: len(events.exit) == 1, "exit")
            assert events.exit[0].returncode == 0
            assert events.exit[0].signal is None

    run(main())


def test_sigterm_to_idle_peepsy_child_exits_0() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", peepsy_worker(), auto_restart=False)
            pid = (await m.request("info", "w")).data["pid"]
            os.kill(pid, signal.SIGTERM)
            await eventually(lambda: len(events.exit) == 1, "exit")
            assert events.exit[0].returncode == 0
            assert m.get_process_stats("w").status == "stopped"

    run(main())


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        # Ignores SHUTDOWN, stops at end of input: closing stdin ends it.
        (("--ignore-shutdown",), 0),
        # Ignores SHUTDOWN and end of input: SIGTERM ends it.
        (("--ignore-shutdown", "--ignore-eof"), -signal.SIGTERM),
        # Ignores everything it can: SIGKILL ends it.
        (("--ignore-shutdown", "--ignore-eof", "--ignore-term"), -signal.SIGKILL),
    ],
    ids=["closed-stdin", "sigterm", "sigkill"],
)
def test_shutdown_child_escalates(flags: tuple[str, ...], code: int) -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("stubborn", raw_worker(*flags))
            pid = (await m.request("pid", "stubborn")).data
            started = time.monotonic()
            assert await m.shutdown_child("stubborn", timeout=300) == code
            assert time.monotonic() - started < 9  # 0.3 s, then a second per step, and margin
            assert "stubborn" not in m.targets
            assert not pid_running(pid)

    run(main())


def test_closing_stdin_makes_peepsy_child_exit() -> None:
    """STREAM-3: end of input means the master is gone; the child exits 0."""
    proc = subprocess.Popen(
        peepsy_worker(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    watchdog = threading.Timer(TEST_LIMIT_S, proc.kill)  # a hang becomes a failure
    watchdog.start()
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        request = {"type": "REQUEST", "id": "m1", "action": "echo", "data": "hi"}
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        answered = False
        for line in proc.stdout:  # READY, HEARTBEATs, then the answer
            message = json.loads(line)
            if message["type"] == "RESPONSE":
                assert (message["id"], message["status"], message["data"]) == ("m1", 200, "hi")
                answered = True
                break
        assert answered
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_children_exit_when_their_master_is_killed() -> None:
    """SIGKILL a master process: its children see end of input and exit."""
    master = subprocess.Popen(
        [PYTHON, str(WORKERS / "master_script.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    pids: dict[str, int] = {}
    watchdog = threading.Timer(TEST_LIMIT_S, master.kill)  # a hang becomes a failure
    watchdog.start()
    try:
        assert master.stdout is not None
        line = master.stdout.readline()
        assert line, "the master script printed no pids"
        pids = json.loads(line)
        assert set(pids) == {"peepsy", "raw", "node"}
        assert all(pid_running(pid) for pid in pids.values())
        master.kill()
        master.wait(timeout=5)
        survivors = [name for name, pid in pids.items() if not wait_pid_gone(pid, 5)]
        assert survivors == []
    finally:
        watchdog.cancel()
        if master.poll() is None:
            master.kill()
            master.wait()
        if master.stdout is not None:
            master.stdout.close()
        for pid in pids.values():
            kill_if_running(pid, signal.SIGKILL)
