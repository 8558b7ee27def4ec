"""A quick probe of the master's pipelined throughput, with an optional profile.

    taskset -c 0 python -m benchmarks.probe 512          # master on core 0, child on core 1
    taskset -c 0 python -m benchmarks.probe 512 --profile

It prints round trips per second and the CPU time master and child spent per request
(``time.process_time`` in the master, ``/proc`` for the child).

Not the benchmark (``python -m benchmarks.run`` is): one lane, one window, no baseline.
It is what the profiling in docs/performance.md used, kept so that a change to the hot
path can be tried in seconds. The child runs pinned to core 1 when there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time

from benchmarks.lanes import BENCH
from peepsy import Master


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time of process ``pid`` so far; None where /proc has none."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _probe(in_flight: int, seconds: float, profile: bool) -> tuple[float, str]:
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 else []
    async with Master() as master:
        await master.spawn_child(
            "c0", [*pin, sys.executable, str(BENCH / "echo_child.py")], "concurrent"
        )
        data = {"n": 1, "text": "x" * 80}
        count = 0
        stop = False

        async def caller() -> None:
            nonlocal count
            while not stop:
                await master.request("echo", "c0", data)
                count += 1

        tasks = [asyncio.create_task(caller()) for _ in range(in_flight)]
        await asyncio.sleep(0.5)  # warm-up, not synchronization: nothing waits on it
        profiler = cProfile.Profile() if profile else None
        pid = master.get_process_stats("c0").pid
        child_cpu = _cpu_seconds(pid)
        first, started, cpu = count, time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
        answered = count - first
        rate = answered / (time.perf_counter() - started)
        cost = f"master CPU {(time.process_time() - cpu) / answered * 1e6:.2f} us/request"
        child_now = _cpu_seconds(pid)
        if child_cpu is not None and child_now is not None:
            cost += f", child CPU {(child_now - child_cpu) / answered * 1e6:.2f}"
        stop = True
        await asyncio.gather(*tasks)
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return rate, cost


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("in_flight", type=int, nargs="?", default=512)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rate, cost = asyncio.run(_probe(args.in_flight, args.seconds, args.profile))
    print(f"{args.in_flight} in flight: {rate:,.0f} round trips/s; {cost}")


if __name__ == "__main__":
    main()
