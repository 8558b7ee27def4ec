"""The raw pipe: ``os.write`` the payload's bytes to a child that echoes them and
``os.read`` them back, one payload in flight; the bandwidth ceiling for every lane.

``raw-pipe`` echoes each chunk as it comes. ``raw-whole`` sends the payload as one
newline-ended message that the child echoes only once it has all of it, over pipes as
wide as peepsy makes them for long lines: what any protocol that answers whole messages
could reach, with no JSON and no event loop."""

from __future__ import annotations

import fcntl
import os
import selectors
import subprocess
import sys
import time

from benchmarks.common import LaneConfig, LaneResult, Point, point
from benchmarks.lanes import BENCH

#: Linux's default pipe capacity: a write this large into an empty pipe never blocks.
PIPE_CAPACITY = 65536
#: The size peepsy gives a child's pipes while long lines cross them
#: (``peepsy.transport._pipes.WIDE_BYTES``; not imported: no lane but peepsy's loads it).
WIDE_PIPE = 256 * 1024


def _round_trip(fd_in: int, fd_out: int, data: bytes, sel: selectors.BaseSelector) -> None:
    """Write and read at once: a payload larger than the pipe (64 KB) would deadlock a
    master that writes it all before reading."""
    view, want = memoryview(data), len(data)
    if want <= PIPE_CAPACITY:
        # It fits in the empty pipe: one write, then blocking reads, with no selector
        # calls, which would cost more than the copy itself at 100 B.
        if os.write(fd_in, data) != want:
            raise RuntimeError("short write into an empty pipe")
        while want:
            want -= len(os.read(fd_out, want))
        return
    sel.register(fd_in, selectors.EVENT_WRITE)
    writing = True
    try:
        while want:
            for key, _ in sel.select():
                if key.fd == fd_out:
                    want -= len(os.read(fd_out, 1 << 16))  # see children/raw_echo.py
                elif writing:
                    view = view[os.write(fd_in, view[: 1 << 20]) :]
                    if not view:
                        sel.unregister(fd_in)
                        writing = False
    finally:
        if writing:
            sel.unregister(fd_in)


def _measure(fd_in: int, fd_out: int, size: int, config: LaneConfig, *, whole: bool) -> Point:
    data = b"x" * (size - 1) + b"\n" if whole else b"x" * size
    clock = time.perf_counter_ns
    latencies: list[int] = []
    with selectors.DefaultSelector() as sel:
        sel.register(fd_out, selectors.EVENT_READ)

        def once() -> None:
            t0 = clock()
            _round_trip(fd_in, fd_out, data, sel)
            latencies.append(clock() - t0)

        deadline = time.perf_counter() + config.warmup
        while time.perf_counter() < deadline or len(latencies) < config.min_count:
            once()
        latencies.clear()
        start = time.perf_counter()
        deadline = start + config.seconds
        while time.perf_counter() < deadline or len(latencies) < config.min_count:
            once()
        elapsed = time.perf_counter() - start
    return point(len(latencies), elapsed, latencies, size)


def run(name: str, config: LaneConfig) -> LaneResult:
    whole = name == "raw-whole"
    child = [*config.child_prefix, sys.executable, str(BENCH / "children" / "raw_echo.py")]
    proc = subprocess.Popen(
        [*child, "whole"] if whole else child, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    fd_in, fd_out = proc.stdin.fileno(), proc.stdout.fileno()
    os.set_blocking(fd_in, False)
    if whole and hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux; elsewhere pipes keep their size
        for fd in (fd_in, fd_out):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, WIDE_PIPE)
    try:
        sizes = sorted({config.payload, *config.sweep})
        payloads = {str(s): _measure(fd_in, fd_out, s, config, whole=whole) for s in sizes}
    finally:
        proc.stdin.close()
        proc.wait(10)
    return {"windows": {}, "payloads": payloads}
