"""Many light calls from a script: peepsy's fan-out against ProcessPoolExecutor's ``map``.

    python -m benchmarks.fanout [--calls N] [--workers W] [--rounds R] [--json F]

Each lane maps a trivial function (``light``) over ``range(N)`` with ``W`` worker
processes and reports the seconds the map took (start-up excluded, reported apart).
Every lane runs in a process of its own; the lanes' order rotates from round to round;
each ratio to ``ppe-map-1`` is taken within a round and reported as the median over
rounds. See docs/performance.md ("Fan-out from a script").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import lane_in_process

ROOT = Path(__file__).resolve().parent.parent

#: name -> what it runs.
LANES: dict[str, str] = {
    "ppe-map-1": "ProcessPoolExecutor.map, chunksize=1",
    "ppe-map-100": "ProcessPoolExecutor.map, chunksize=100",
    "executor-map-1": "peepsy.sync.Executor.map, chunksize=1",
    "executor-map-100": "peepsy.sync.Executor.map, chunksize=100",
    "master-map": "peepsy Master.map through a group (python -m peepsy.child MODULE:FUNCTION)",
    "master-gather": "peepsy Master, asyncio.gather of every request at once",
}
BASELINE = "ppe-map-1"


def light(x: int) -> int:
    """The work of one call: next to nothing, so that the overhead is what is measured."""
    return x + 1


def _check(results: list[int], calls: int) -> None:
    if results != [x + 1 for x in range(calls)]:
        raise RuntimeError("the results came back wrong")


def _pools(name: str, calls: int, workers: int) -> dict[str, float]:
    chunksize = 100 if name.endswith("-100") else 1
    start = time.perf_counter()
    if name.startswith("ppe"):
        pool: Any = ProcessPoolExecutor(workers)
        list(pool.map(light, range(workers)))  # the pool starts its workers lazily
    else:
        import peepsy.sync  # noqa: PLC0415 - no peepsy in the stdlib lanes

        pool = peepsy.sync.Executor(workers)
        list(pool.map(light, range(2 * workers)))  # its children are up once they answer
    started = time.perf_counter()
    with pool:
        results = list(pool.map(light, range(calls), chunksize=chunksize))
        done = time.perf_counter()
    _check(results, calls)
    return {"seconds": done - started, "startup": started - start}


async def _master(name: str, calls: int, workers: int) -> dict[str, float]:
    from peepsy import Master  # noqa: PLC0415

    start = time.perf_counter()
    async with Master(timeout=60_000) as master:
        command = [sys.executable, "-m", "peepsy.child", "benchmarks.fanout:light"]
        for i in range(workers):
            await master.spawn_child(f"w{i}", command, group="pool", cwd=str(ROOT))
        await master.request("light", "pool", 0)
        started = time.perf_counter()
        if name == "master-map":
            results = [r.data async for r in master.map("light", "pool", range(calls))]
        else:
            replies = await asyncio.gather(
                *(master.request("light", "pool", x) for x in range(calls))
            )
            results = [r.data for r in replies]
        done = time.perf_counter()
    _check(results, calls)
    return {"seconds": done - started, "startup": started - start}


def run_lane(name: str, calls: int, workers: int) -> dict[str, float]:
    if name.startswith("master"):
        return asyncio.run(_master(name, calls, workers))
    return _pools(name, calls, workers)


def _in_process(name: str, calls: int, workers: int, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.fanout", "--lane", name]
    argv += ["--calls", str(calls), "--workers", str(workers)]
    return lane_in_process(argv, ROOT, timeout)


def measure(
    calls: int, workers: int, rounds: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    names = list(LANES)
    all_rounds: list[dict[str, Any]] = []
    for r in range(rounds):
        shift = r % len(names)
        this: dict[str, Any] = {}
        for name in names[shift:] + names[:shift]:
            progress(f"round {r + 1}/{rounds}: {name}")
            this[name] = _in_process(name, calls, workers, 120 + calls / 100)
        base = this[BASELINE].get("seconds")
        for got in this.values():
            if base and "seconds" in got:
                got["ratio"] = got["seconds"] / base
        all_rounds.append(this)
    medians: dict[str, dict[str, float]] = {}
    for name in names:
        ok = [r[name] for r in all_rounds if "seconds" in r[name]]
        if ok:
            medians[name] = {
                key: statistics.median(got[key] for got in ok)
                for key in ("seconds", "startup", "ratio")
                if all(key in got for got in ok)
            }
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "calls": calls,
            "workers": workers,
            "rounds": rounds,
        },
        "lanes": LANES,
        "rounds": all_rounds,
        "medians": medians,
    }


def table(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"{meta['calls']} calls, {meta['workers']} workers, median of {meta['rounds']} "
        f"round(s), {meta['date']}, Python {meta['python']}, {meta['cpus']} CPUs",
        f"{'lane':<18} {'seconds':>9} {'x ppe-map-1':>12} {'start-up s':>11}",
    ]
    for name in result["lanes"]:
        got = result["medians"].get(name)
        if got is None:
            errors = {r[name].get("error") for r in result["rounds"]}
            lines.append(f"{name:<18} failed: {'; '.join(sorted(map(str, errors)))}")
            continue
        lines.append(
            f"{name:<18} {got['seconds']:>9.3f} {got.get('ratio', float('nan')):>12.2f} "
            f"{got['startup']:>11.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every round and the medians here")
    parser.add_argument("--lane", choices=list(LANES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lane is not None:
        print(json.dumps(run_lane(args.lane, args.calls, args.workers)))
        return 0
    result = measure(
        args.calls, args.workers, args.rounds, lambda s: print(s, file=sys.stderr, flush=True)
    )
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if len(result["medians"]) == len(LANES) else 1


if __name__ == "__main__":
    raise SystemExit(main())
