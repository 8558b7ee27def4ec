"""The end-of-input watchdog in-process (STREAM-3), with the process's end replaced by a
recorder: it ends at a hang-up of the input or when told the input ended, flushes first
within its bound, and does nothing once stopped. The real processes are in
``tests/process/test_child_eof.py``."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from peepsy import Child
from peepsy.child._watchdog import EofWatchdog
from tests.child._support import run, serving, settle

#: No test comes near this; it only turns a hang into a failure.
LIMIT_S = 10.0


class Ending:
    """Stands for ``os._exit``: records the status and what was flushed before it."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.flushed = 0
        self.done = threading.Event()

    def flush(self) -> None:
        self.flushed += 1

    def end(self, status: int) -> None:
        self.status = status
        self.done.set()


@contextmanager
def watching(
    fd: int | None, grace_ms: int, flush: Callable[[], None] | None = None
) -> Iterator[tuple[EofWatchdog, Ending]]:
    ending = Ending()
    watchdog = EofWatchdog(fd, grace_ms, flush or ending.flush, end=ending.end)
    watchdog.start()
    try:
        yield watchdog, ending
    finally:
        watchdog.stop()


def test_a_pipe_whose_writers_are_gone_ends_the_process_after_the_grace() -> None:
    read, write = os.pipe()
    try:
        with watching(read, 50) as (_, ending):
            os.write(write, b'{"type":"REQUEST"}\n')  # data alone is the loop's affair
            os.close(write)
            write = -1
            assert ending.done.wait(LIMIT_S)
            assert (ending.status, ending.flushed) == (0, 1)
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_a_socket_whose_peer_closed_ends_the_process() -> None:
    ours, theirs = socket.socketpair()
    with ours, watching(ours.fileno(), 50) as (_, ending):
        theirs.close()
        assert ending.done.wait(LIMIT_S)
        assert ending.status == 0


def test_the_loop_reading_the_end_is_enough() -> None:
    with watching(None, 20) as (watchdog, ending):
        watchdog.ended()
        watchdog.ended()  # the grace counts from the first
        assert ending.done.wait(LIMIT_S)
        assert ending.status == 0


def test_a_hang_up_after_the_loop_read_the_end_keeps_the_first_count() -> None:
    read, write = os.pipe()
    try:
        with watching(read, 300) as (watchdog, ending):
            watchdog.ended()
            os.close(write)
            write = -1
            assert ending.done.wait(LIMIT_S)
            assert ending.status == 0
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


def test_a_flush_that_blocks_or_fails_does_not_keep_the_process() -> None:
    stuck = threading.Event()

    def blocked() -> None:
        stuck.wait(LIMIT_S)

    def failing() -> None:
        raise OSError("the master is gone")

    for flush in (blocked, failing):
        with watching(None, 20, flush) as (watchdog, ending):
            watchdog.ended()
            assert ending.done.wait(LIMIT_S)
            assert ending.status == 0
    stuck.set()


def test_a_stopped_watchdog_never_ends_the_process() -> None:
    read, write = os.pipe()
    ending = Ending()
    watchdog = EofWatchdog(read, 0, ending.flush, end=ending.end)
    watchdog.start()
    watchdog.stop()
    watchdog.stop()
    watchdog.ended()  # after stop: nothing, and nothing written to a closed pipe
    os.close(write)
    os.close(read)
    assert ending.status is None


def test_a_watchdog_never_started_can_be_stopped() -> None:
    watchdog = EofWatchdog(None, 1000, lambda: None)
    watchdog.stop()


@pytest.mark.parametrize(("grace_ms", "margin_s"), [(1000, 0.1), (5000, 0.1), (200, 0.02)])
def test_the_flush_gets_the_end_of_the_grace(grace_ms: int, margin_s: float) -> None:
    # The process is gone by the grace itself: the flush's bound comes out of it.
    watchdog = EofWatchdog(None, grace_ms, lambda: None)
    try:
        assert watchdog.margin_s == pytest.approx(margin_s)
    finally:
        watchdog.stop()


def test_the_answers_of_an_interrupted_read_can_be_taken_once() -> None:
    """What the watchdog flushes besides the channel: answers made during a read that a
    loop-blocking handler holds, which the read would write only when it ends."""

    async def main() -> None:
        child = Child("concurrent")
        taken: list[bytes] = []

        @child.handler("echo")
        async def echo(data: Any) -> Any:
            return data

        @child.handler("take")
        async def take(data: Any) -> None:
            # Runs inside the read, as a handler that blocks the loop would.
            session = child._session
            assert session is not None
            taken.append(session.take_unsent())

        async with serving(child) as master:
            session = child._session
            assert session is not None
            assert session.take_unsent() == b""  # no read in progress
            # The read (feeding the bytes) is over when this returns.
            ids = master.requests_at_once(("echo", 1), ("echo", 2), ("take", None))
            [unsent] = taken
            for rid in ids[:2]:
                assert rid not in master.responses  # taken from the read: not written twice
                assert b'"id":"' + rid.encode() + b'"' in unsent
            await settle()
            assert master.responses[ids[2]].status == 200  # answered after the read

    run(main())
