"""Helpers for the real-process tests: worker commands, a runner, polling, event records."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from peepsy import (
    AutoRestartEvent,
    ErrorEvent,
    ExitEvent,
    HeartbeatMissedEvent,
    Master,
    RestartFailedEvent,
    SpawnEvent,
)
from peepsy.master import RearmEvent, RecoveredEvent, StalledEvent

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"
PYTHON = sys.executable
#: No test here should come near this; it only turns a hang into a failure.
TEST_LIMIT_S = 30.0


def peepsy_worker(mode: str = "auto", *, heartbeat: int | None = None) -> list[str]:
    """A peepsy Child (workers/peepsy_worker.py) in ``mode``: ``sequential``,
    ``concurrent`` or ``auto`` (take the mode from INIT); ``heartbeat`` ms fixed in the
    Child (else taken from INIT)."""
    argv = [PYTHON, str(WORKERS / "peepsy_worker.py"), mode]
    return argv if heartbeat is None else [*argv, "--heartbeat", str(heartbeat)]


def raw_worker(*flags: str) -> list[str]:
    """A worker without peepsy (workers/raw_worker.py): no heartbeats unless asked."""
    return [PYTHON, str(WORKERS / "raw_worker.py"), *flags]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test's coroutine on a fresh event loop, bounded by TEST_LIMIT_S, then
    collect its garbage: a subprocess transport or Popen that peepsy left unclosed
    warns (ResourceWarning, an error under this project's filterwarnings) in the test
    that leaked it rather than in whichever test happens to collect it later."""
    try:
        return asyncio.run(asyncio.wait_for(coro, TEST_LIMIT_S))
    except BaseException as exc:
        # A failed test's traceback (pytest keeps it in sys.last_traceback) would keep
        # its master and transports alive; the frames' locals are not needed to report.
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        gc.collect()


async def eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_pid_gone(pid: int, within: float = 5.0) -> bool:
    """Block until ``pid`` is gone; whether it went within ``within`` seconds."""
    deadline = time.monotonic() + within
    while pid_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kill_if_running(pid: int, sig: int) -> None:
    if pid_running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Events:
    """Every event a master emits, by kind, in order."""

    def __init__(self, master: Master[Any, Any]) -> None:
        self.spawn: list[SpawnEvent] = []
        self.exit: list[ExitEvent] = []
        self.heartbeat_missed: list[HeartbeatMissedEvent] = []
        self.auto_restart: list[AutoRestartEvent] = []
        self.restart_failed: list[RestartFailedEvent] = []
        self.error: list[ErrorEvent] = []
        self.rearm: list[RearmEvent] = []
        self.stalled: list[StalledEvent] = []
        self.recovered: list[RecoveredEvent] = []
        master.on("rearm", self.rearm.append)
        master.on("stalled", self.stalled.append)
        master.on("recovered", self.recovered.append)
        master.on("spawn", self.spawn.append)
        master.on("exit", self.exit.append)
        master.on("heartbeat-missed", self.heartbeat_missed.append)
        master.on("auto-restart", self.auto_restart.append)
        master.on("restart-failed", self.restart_failed.append)
        master.on("error", self.error.append)

    def respawned(self, target: str, times: int = 1) -> bool:
        """Whether ``target`` has been spawned again ``times`` times (the spawn event
        comes once the new process is up and has been sent INIT)."""
        return sum(1 for e in self.spawn if e.target == target and e.restart) >= times


def live_children(excluding: Collection[int] = ()) -> list[int]:
    """The pids of this process's children that are still running (not zombies), but
    for ``excluding``: the children a test found when it began, which are not its own
    (the session's idle-minute process, tests/conftest.py, is a child of every worker)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        if int(fields[1]) == me and fields[0] not in ("Z", "X") and pid not in excluding:
            found.append(pid)
    return found
