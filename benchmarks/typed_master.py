"""What ``Master[ReqT, RespT]``'s run-time checks cost, against the same master unchecked.

    python -m benchmarks.typed_master [--count 5000] [--rounds 7] [--lanes a,b] [--json out]

The master's CPU time per echo request (a small object, one ``echo_child.py``, a window
of requests in flight), and round trips per second, for a master that is:

- ``unsubscripted``: ``Master()``, no checks (the fast path);
- ``subscripted``: ``Master[Payload, Payload]()``, a pydantic model each way: the data
  is validated and dumped before sending, and each reply parsed into a ``Payload``;
- ``dict``: ``Master[dict[str, Any], dict[str, Any]]()``, a cheap check each way;
- ``opted-out``: ``Master[Payload, Payload](validate_types=False)``.

Each round runs every lane once, in turn (starting with another lane each round), and
ratios of CPU per request to ``unsubscripted`` are taken within a round; the medians
over rounds are printed. CPU time is the master process's own, so the ratios hold on a
busy machine better than round trips per second do. Only the ratios travel between
machines. ``--lanes unsubscripted`` alone, run alternately against two checkouts
(``PYTHONPATH``), is the A/B of the unchecked hot path itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from peepsy import Master

HERE = Path(__file__).resolve().parent
CHILD = [sys.executable, str(HERE / "echo_child.py")]
Point = dict[str, float]


class Payload(BaseModel):
    n: int
    text: str


DATA = {"n": 1, "text": "hello"}
MODEL = Payload(n=1, text="hello")


def _masters() -> dict[str, tuple[Callable[[], Master[Any, Any]], object]]:
    return {
        "unsubscripted": (Master, DATA),
        "subscripted": (Master[Payload, Payload], MODEL),
        "dict": (Master[dict[str, Any], dict[str, Any]], DATA),
        "opted-out": (lambda: Master[Payload, Payload](validate_types=False), DATA),
    }


async def _lane(
    make: Callable[[], Master[Any, Any]], data: object, count: int, window: int
) -> Point:
    async with make() as master:
        await master.spawn_child("echo", CHILD, "concurrent")

        def one() -> Awaitable[Any]:
            return master.request("echo", "echo", data)

        for _ in range(300):  # warm up
            await one()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count // window):
            await asyncio.gather(*(one() for _ in range(window)))
        done = count // window * window
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        # The master's CPU per request is what the checks add to; the wall clock also
        # holds the child's work and whatever else the machine runs.
        return {"per_s": done / wall, "master_cpu_us": cpu / done * 1e6}


def _round(lanes: list[str], count: int, window: int) -> dict[str, float]:
    masters = _masters()
    out: dict[str, float] = {}
    for lane in lanes:
        make, data = masters[lane]
        point = asyncio.run(_lane(make, data, count, window))
        out[f"{lane} round trips/s"] = point["per_s"]
        out[f"{lane} master CPU us/request"] = point["master_cpu_us"]
    if "unsubscripted" in lanes:
        base = out["unsubscripted master CPU us/request"]
        for lane in lanes:
            if lane != "unsubscripted":
                out[f"ratio {lane}/unsubscripted CPU"] = out[f"{lane} master CPU us/request"] / base
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--window", type=int, default=16, help="requests in flight")
    parser.add_argument("--lanes", default=",".join(_masters()), help="comma-separated")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    lanes = [lane for lane in args.lanes.split(",") if lane]
    unknown = set(lanes) - set(_masters())
    if unknown:
        parser.error(f"unknown lanes: {', '.join(sorted(unknown))}")
    rounds = []
    for number in range(args.rounds):
        # Each round starts with another lane, so that no lane always runs first.
        turn = number % len(lanes)
        rounds.append(_round(lanes[turn:] + lanes[:turn], args.count, args.window))
    median = {key: statistics.median(r[key] for r in rounds) for key in sorted(rounds[0])}
    for key, value in median.items():
        if key.startswith("ratio"):
            each = ", ".join(f"{r[key]:.2f}" for r in rounds)
            print(f"{key:40} {value:8.2f}  (rounds: {each})")
        else:
            print(f"{key:40} {value:8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"median": median, "rounds": rounds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
