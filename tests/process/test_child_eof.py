"""A child outlives its master by at most its ``eof_grace`` (STREAM-3, SHUT-2), whatever
its handlers do: asynchronous ones, synchronous ones on their threads, hung ones, and
ones that block the event loop itself, in both modes, on stdin/stdout and on Node's IPC
channel, and when the master process is SIGKILLed. Real processes throughout; the child's
exit is waited for, never slept for."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from tests.process._support import PYTHON, TEST_LIMIT_S, pid_running

WORKER = Path(__file__).resolve().parents[1] / "child" / "eof_worker.py"
MASTER = Path(__file__).resolve().parents[1] / "child" / "eof_master.py"
#: Far under the handlers' 60 s, far over any grace here: a child still there after
#: its grace and this is one that outlives its master.
BOUND_S = 10.0
DEFAULT_GRACE_MS = 1000


def request(action: str) -> bytes:
    return json.dumps({"type": "REQUEST", "id": "r1", "action": action}).encode() + b"\n"


def wait_started(stderr: IO[bytes], action: str) -> None:
    """Read the child's stderr until its handler says it runs."""
    for line in stderr:
        if line.strip() == f"started {action}".encode():
            return
    raise AssertionError(f"the child ended before its {action!r} handler started")


def argv(mode: str, grace_ms: int | None) -> list[str]:
    return [PYTHON, str(WORKER), mode] + ([] if grace_ms is None else [str(grace_ms)])


@contextmanager
def killed_at_limit(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """A hang becomes a failure; whatever is left is killed and its pipes closed."""
    limit = threading.Timer(TEST_LIMIT_S, proc.kill)
    limit.start()
    try:
        yield
    finally:
        limit.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def assert_exits_0(proc: subprocess.Popen[bytes], grace_ms: int) -> None:
    started = time.monotonic()
    try:
        status = proc.wait(timeout=grace_ms / 1000 + BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child still runs {time.monotonic() - started:.1f} s after end of input")
    assert status == 0


CASES = [
    ("sleep", "concurrent", None),  # a 60 s async handler, default grace
    ("sleep", "sequential", 300),
    ("block", "concurrent", 300),  # a 60 s sync handler on its thread
    ("block", "sequential", 300),
    ("hang", "sequential", 300),  # a sync handler that never returns
    ("spin", "concurrent", 300),  # ... and holds the GIL between switches
    ("block_loop", "concurrent", 300),  # a handler that blocks the event loop 60 s
    ("block_loop", "sequential", None),
    ("spin_loop", "sequential", 300),  # ... for ever
]


@pytest.mark.parametrize(("action", "mode", "grace"), CASES)
def test_closing_stdin_ends_a_busy_child_within_its_grace(
    action: str, mode: str, grace: int | None
) -> None:
    proc = subprocess.Popen(
        argv(mode, grace), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    with killed_at_limit(proc):
        assert proc.stdin is not None
        assert proc.stderr is not None
        proc.stdin.write(request(action))
        proc.stdin.flush()
        wait_started(proc.stderr, action)
        proc.stdin.close()
        assert_exits_0(proc, grace or DEFAULT_GRACE_MS)


@pytest.mark.parametrize(
    ("action", "mode"),
    [
        ("block", "sequential"),
        ("hang", "concurrent"),
        ("block_loop", "concurrent"),
        ("spin_loop", "sequential"),
    ],
)
def test_a_closed_node_ipc_channel_ends_a_busy_child_within_its_grace(
    action: str, mode: str
) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {**os.environ, "NODE_CHANNEL_FD": str(theirs.fileno())}
    env["NODE_CHANNEL_SERIALIZATION_MODE"] = "json"
    try:
        proc = subprocess.Popen(
            argv(mode, 300),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(theirs.fileno(),),
        )
    finally:
        theirs.close()
    with ours, killed_at_limit(proc):
        assert proc.stderr is not None
        ours.sendall(request(action))
        wait_started(proc.stderr, action)
        ours.close()  # what a Node master's death does to the channel
        assert_exits_0(proc, 300)


@pytest.mark.parametrize(("action", "mode"), [("block_loop", "sequential"), ("hang", "concurrent")])
def test_a_busy_child_ends_when_its_master_process_is_sigkilled(action: str, mode: str) -> None:
    master = subprocess.Popen(
        [PYTHON, str(MASTER), action, *argv(mode, None)[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    with killed_at_limit(master):
        assert master.stdout is not None
        line = master.stdout.readline()
        assert line, "the master printed no pid"
        pid = int(line)
        assert pid_running(pid)
        master.send_signal(signal.SIGKILL)
        master.wait()
        deadline = time.monotonic() + DEFAULT_GRACE_MS / 1000 + BOUND_S
        while pid_running(pid):  # not our child: polled, not waited for
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("the child outlived its SIGKILLed master")
            time.sleep(0.02)


def test_answers_made_before_a_handler_blocked_the_loop_are_flushed() -> None:
    """Answers that the read in progress holds when a handler blocks the event loop go
    out before the process ends: a master that only closed the child's stdin (SHUT-3)
    still reads them."""
    proc = subprocess.Popen(
        argv("concurrent", 300),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with killed_at_limit(proc):
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        echoes = [
            json.dumps({"type": "REQUEST", "id": rid, "action": "echo", "data": rid}).encode()
            for rid in ("e1", "e2")
        ]
        proc.stdin.write(b"\n".join(echoes) + b"\n" + request("block_loop"))  # one read
        proc.stdin.flush()
        wait_started(proc.stderr, "block_loop")
        proc.stdin.close()
        answered = {
            message["id"]: message["data"]
            for message in map(json.loads, proc.stdout.read().splitlines())
            if message["type"] == "RESPONSE"
        }
        assert answered == {"e1": "e1", "e2": "e2"}
        assert_exits_0(proc, 300)
