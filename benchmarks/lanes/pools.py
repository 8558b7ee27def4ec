"""The stdlib's process pools, 4 workers: ``concurrent.futures.ProcessPoolExecutor``
(``submit``) and ``multiprocessing.Pool`` (``apply_async``).

The main thread is the master: it keeps the window full, sending the next request as it
takes each completion from a queue, which the pools' own threads fill from callbacks.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from benchmarks.common import LaneConfig, LaneResult, Point, payload, point

WORKERS = 4
#: Send ``data`` to a worker; call the callback (from any thread) when it comes back.
Submit = Callable[[Any, Callable[[], None]], None]


def echo(data: Any) -> Any:
    return data


def _pin(cores: list[int]) -> None:
    """Pool initializer: forked workers never exec, so taskset cannot pin them; they pin
    themselves (a forked worker has one thread, so this covers all it will start)."""
    if cores:
        os.sched_setaffinity(0, cores)


def _drive(submit: Submit, window: int, size: int, config: LaneConfig) -> Point:
    done: queue.SimpleQueue[int] = queue.SimpleQueue()
    data = payload(size)
    clock = time.perf_counter_ns

    def send() -> None:
        start = clock()
        submit(data, lambda: done.put(start))

    for _ in range(window):
        send()
    latencies: list[int] = []
    warm_end = time.perf_counter() + config.warmup
    end = float("inf")
    measuring = False
    start = 0.0
    while True:
        started = done.get()
        now = clock()
        if measuring:
            latencies.append(now - started)
            if time.perf_counter() >= end and len(latencies) >= config.min_count:
                break
        elif time.perf_counter() >= warm_end:
            measuring, start = True, time.perf_counter()
            end = start + config.seconds
        send()
    elapsed = time.perf_counter() - start
    for _ in range(window - 1):  # drain the window before the next measurement
        done.get()
    return point(len(latencies), elapsed, latencies, size)


def run(name: str, config: LaneConfig) -> LaneResult:
    cores = list(config.child_cores)
    ctx = multiprocessing.get_context("fork")
    windows: dict[str, Point] = {}
    if name == "process-pool":
        with ProcessPoolExecutor(WORKERS, ctx, initializer=_pin, initargs=(cores,)) as ex:

            def submit(data: Any, callback: Callable[[], None]) -> None:
                def settled(f: Future[Any]) -> None:
                    f.result()  # an error in a worker fails the lane, not the count
                    callback()

                ex.submit(echo, data).add_done_callback(settled)

            for window in config.windows:
                windows[str(window)] = _drive(submit, window, config.payload, config)
    else:
        with ctx.Pool(WORKERS, initializer=_pin, initargs=(cores,)) as pool:

            def submit(data: Any, callback: Callable[[], None]) -> None:
                pool.apply_async(echo, (data,), callback=lambda _: callback())

            for window in config.windows:
                windows[str(window)] = _drive(submit, window, config.payload, config)
    return {"windows": windows, "payloads": {}}
