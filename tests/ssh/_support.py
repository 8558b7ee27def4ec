"""Helpers for the tests against a real sshd: remote worker commands, and finding the
"remote" processes (on loopback they are local: each carries a marker in its
environment, unique to the test, so that a test sees its own and no one else's)."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

from tests.process._support import ROOT, peepsy_worker
from tools.sshd import Sshd, connection_pids, parent

#: The environment variable that marks the remote workers of one test.
MARK = "PEEPSY_SSH_TEST_MARK"


def new_mark() -> str:
    return uuid.uuid4().hex


def remote_env(mark: str) -> dict[str, str]:
    """What a remote worker needs: this checkout's peepsy (the remote login environment
    knows nothing of the master's), and the test's marker."""
    return {"PYTHONPATH": str(ROOT), MARK: mark}


def worker(mode: str = "auto", *, heartbeat: int | None = None) -> list[str]:
    return peepsy_worker(mode, heartbeat=heartbeat)


def marked(mark: str) -> list[int]:
    """The live processes that carry ``mark`` in their environment."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def session_pids(sshd: Sshd) -> list[int]:
    """The sshd processes serving connections (not the listener)."""
    assert sshd.proc is not None
    return connection_pids(sshd.proc.pid)


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def connection_of(sshd: Sshd, pid: int) -> int:
    """The per-connection sshd process (the listener's child) that ``pid`` runs under."""
    assert sshd.proc is not None
    while True:
        up = parent(pid)
        assert up is not None, f"{pid} does not run under sshd"
        assert up > 1, f"{pid} does not run under sshd"
        if up == sshd.proc.pid:
            return pid
        pid = up
