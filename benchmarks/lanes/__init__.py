"""The lanes: each is one master talking to its echo children, run in a process of its
own (``python -m benchmarks.lanes NAME CONFIG``, or Node for the ``node`` lane), so that
no lane inherits another's heap, threads or event loop, and pinning applies to it alone.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import FAST_CODECS, LaneConfig, codec_available

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent


@dataclass(frozen=True)
class Lane:
    name: str
    title: str
    #: Measured at 1, 64 and 512 in flight (the raw pipe is only in the payload sweep).
    windows: bool = True
    #: Takes part in the payload sweep (1 in flight, 100 B to 10 MB).
    sweep: bool = False
    #: Its master's RSS per request in flight is measured.
    memory: bool = False

    def command(self, config: LaneConfig) -> list[str]:
        if self.name == "node":
            return [
                shutil.which("node") or "node",
                str(BENCH / "node" / "master.js"),
                config.to_json(),
            ]
        return [sys.executable, "-m", "benchmarks.lanes", self.name, config.to_json()]

    def missing(self) -> str | None:
        """Why this lane cannot run here, or ``None``."""
        if self.name == "bare-fast" and not any(codec_available(c) for c in FAST_CODECS):
            return "needs orjson or msgspec (pip install -e '.[bench]')"
        if self.name == "node" and shutil.which("node") is None:
            return "needs Node.js (node on PATH)"
        return None


LANES = (
    Lane("peepsy", "peepsy, one child", sweep=True, memory=True),
    Lane("peepsy-group4", "peepsy, group of 4 (least-busy)"),
    Lane("bare-json", "bare asyncio pipe, json", sweep=True, memory=True),
    Lane("bare-fast", "bare asyncio pipe, fast codec", sweep=True),
    Lane("node", "Node.js master + child", sweep=True),
    Lane("process-pool", "ProcessPoolExecutor, 4"),
    Lane("mp-pool", "multiprocessing.Pool, 4"),
    Lane("raw-pipe", "raw pipe, os.write/read", windows=False, sweep=True),
    Lane("raw-whole", "raw pipe, whole message first", windows=False, sweep=True),
)
BY_NAME = {lane.name: lane for lane in LANES}
