"""Echo round trips per second and latency: peepsy against its baselines, in one run.

    python -m benchmarks.run [--quick] [--rounds N] [--seconds S] [--json F] [--plot F]
                             [--only LANE ...]

Each round runs every lane (in its own process, pinned with taskset) at 1, 64 and 512
requests in flight, in each pinning layout, then the payload sweep (1 in flight, 100 B
to 10 MB) and the master's memory per request in flight. The lanes' order rotates from
round to round. Every ratio is taken within a round, between lanes that ran seconds
apart, and reported as the median over rounds with each round's value kept.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.common import LaneConfig, LaneResult, codec_passes_ms, pick_fast_codec, taskset
from benchmarks.lanes import LANES, ROOT, Lane

SWEEP = (100, 10_000, 1_000_000, 10_000_000)
#: --quick: a smoke run that exercises every lane in seconds, not a measurement.
QUICK_SWEEP = (100, 10_000)


@dataclass(frozen=True)
class Layout:
    id: str
    title: str
    master: int
    children: int


def layouts() -> tuple[list[Layout], str | None]:
    """(a) master and children on two cores, (b) all on one; (a) needs two cores."""
    cores = sorted(os.sched_getaffinity(0))
    one = Layout("b", f"all on core {cores[0]}", cores[0], cores[0])
    if len(cores) < 2:
        return [one], f"layout (a) skipped: only core {cores[0]} is available to this process"
    two = Layout("a", f"master on core {cores[0]}, children on core {cores[1]}", *cores[:2])
    return [two, one], None


@dataclass(frozen=True)
class Plan:
    lanes: list[Lane]
    layouts: list[Layout]
    base: LaneConfig
    sweep: tuple[int, ...]
    memory: int
    timeout: float

    def round(self, r: int, rounds: int) -> dict[str, Any]:
        """Every lane in every layout, then the memory lanes; the lanes' order rotates
        by one each round, so that no lane always runs first or after the same one."""
        shift = r % len(self.lanes) if self.lanes else 0
        order = self.lanes[shift:] + self.lanes[:shift]
        this: dict[str, Any] = {"load": os.getloadavg(), "layouts": {}, "memory": {}}
        for layout in self.layouts:
            got = this["layouts"][layout.id] = {}
            for lane in order:
                config = replace(
                    self.base,
                    windows=self.base.windows if lane.windows else (),
                    sweep=self.sweep if lane.sweep else (),
                )
                _progress(f"round {r + 1}/{rounds}, layout ({layout.id}): {lane.name}")
                got[lane.name] = run_lane(lane, layout, config, self.timeout)
        for lane in order:
            if lane.memory and self.memory:
                _progress(f"round {r + 1}/{rounds}: {lane.name}, {self.memory} in flight")
                config = replace(self.base, windows=(), sweep=(), memory=self.memory)
                timeout = self.timeout + self.memory / 500
                held = run_lane(lane, self.layouts[0], config, timeout)
                this["memory"][lane.name] = held.get("memory", held)
        return this


def run_lane(lane: Lane, layout: Layout, config: LaneConfig, timeout: float) -> LaneResult:
    """One lane in a process of its own, pinned to the master's core from its exec on;
    the lane pins its children to theirs (``LaneConfig.child_prefix``)."""
    config = replace(config, child_cores=(layout.children,))
    argv = [*taskset((layout.master,)), *lane.command(config)]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv, cwd=ROOT, stdout=subprocess.PIPE, timeout=timeout, check=False, text=True
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit status {done.returncode}"}
    result: LaneResult = json.loads(lines[-1])
    result["wall_seconds"] = time.perf_counter() - start  # the lane's whole life
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    lanes = [lane for lane in LANES if not args.only or lane.name in args.only]
    skipped = {lane.name: why for lane in lanes if (why := lane.missing()) is not None}
    lanes = [lane for lane in lanes if lane.name not in skipped]
    fast, codec_us = pick_fast_codec()
    plans, layout_note = layouts()
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 1.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    base = LaneConfig(seconds=seconds, warmup=min(0.3, seconds / 2), codec=fast or "json")
    sweep: tuple[int, ...] = SWEEP
    memory = args.memory
    if args.quick:
        plans, sweep, memory = plans[:1], QUICK_SWEEP, min(memory, 1_000)
        layout_note = f"--quick: layout ({plans[0].id}) only, payloads to 10 KB"
    timeout = 120 + 40 * seconds
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])]),
        "python": platform.python_version(),
        "node": _node_version(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "rounds": rounds,
        "seconds": seconds,
        "memory_in_flight": memory,
        "fast_codec": fast,
        "codec_us_per_round_trip": codec_us,
        "codec_passes": {"size": max(sweep), "ms": codec_passes_ms(max(sweep))},
        "skipped": skipped,
        "layout_note": layout_note,
        "pinning": "taskset -c on each exec'd process; pool workers: os.sched_setaffinity "
        "in their initializer",
    }
    plan = Plan(lanes, plans, base, sweep, memory, timeout)
    all_rounds = [plan.round(r, rounds) for r in range(rounds)]
    meta["load_after"] = os.getloadavg()
    result = report.build(meta, plans, lanes, all_rounds)
    print(report.table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        why = report.plot(result, args.plot)
        if why:
            print(f"no plot: {why}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run in seconds: 1 round, 1 layout"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 5; 1 with --quick)")
    parser.add_argument("--seconds", type=float, help="per measurement (default 1.0)")
    parser.add_argument("--memory", type=int, default=100_000, help="requests held in flight")
    parser.add_argument("--json", type=Path, help="write every round and the medians here")
    parser.add_argument("--plot", type=Path, help="PNG of throughput against requests in flight")
    parser.add_argument("--only", nargs="+", metavar="LANE", choices=[lane.name for lane in LANES])
    return parser


def _node_version() -> str | None:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
