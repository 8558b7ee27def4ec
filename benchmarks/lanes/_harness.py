"""What the asyncio lanes (peepsy and the bare pipes) share: the measurement plan and
the memory measurement, so that both sides of each ratio run the very same code."""

from __future__ import annotations

import asyncio
import functools
import gc
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.common import LaneConfig, LaneResult, Point, drive, payload, rss_bytes

#: Send one echo request carrying ``data`` and wait for its answer.
Request = Callable[[Any], Awaitable[object]]


async def measure(request: Request, config: LaneConfig) -> LaneResult:
    """Every window at the default payload, then the payload sweep at 1 in flight."""
    check = payload(config.payload)
    answer = await request(check)
    if answer != check:
        raise RuntimeError(f"the echo came back different: {answer!r:.80}")
    windows: dict[str, Point] = {}
    for window in config.windows:
        one = functools.partial(request, payload(config.payload))
        windows[str(window)] = await drive(one, window, config.payload, config)
    payloads: dict[str, Point] = {}
    for size in config.sweep:
        if size == config.payload and "1" in windows:
            payloads[str(size)] = windows["1"]
            continue
        payloads[str(size)] = await drive(
            functools.partial(request, payload(size)), 1, size, config
        )
    return {"windows": windows, "payloads": payloads}


async def memory(held: Callable[[], Awaitable[object]], release: Request, n: int) -> LaneResult:
    """The master's RSS growth with ``n`` requests in flight to ``children/holding.py``.

    The child signals (SIGUSR1) once it holds all ``n``: by then every request has left
    the master's write buffers, so what is measured is what the master keeps per request
    (the caller's task and coroutine, the pending future, the library's own records).
    """
    loop = asyncio.get_running_loop()
    all_held = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, all_held.set)
    # A warm-up round first: the first requests pay for imports, caches and arenas.
    warm = [asyncio.ensure_future(held()) for _ in range(min(1000, n // 2))]
    await asyncio.sleep(0.2)
    await release(None)
    await asyncio.gather(*warm)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    callers = [asyncio.ensure_future(held()) for _ in range(n)]
    await asyncio.wait_for(all_held.wait(), 600)
    during, sent = rss_bytes(), time.perf_counter()
    await release(None)
    await asyncio.gather(*callers)
    answered = time.perf_counter()
    return {
        "memory": {
            "in_flight": n,
            "rss_before": before,
            "rss_in_flight": during,
            "kb_per_request": (during - before) / n / 1024,
            # Not a target, but telling: how long the n requests took to go out and to
            # come back (a master that slows down with what it holds shows here).
            "seconds_to_send": sent - start,
            "seconds_to_answer": answered - sent,
        }
    }
