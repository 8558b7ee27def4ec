"""peepsy's own master and child: one child, or a group of four."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks.common import LaneConfig, LaneResult
from benchmarks.lanes import BENCH
from benchmarks.lanes._harness import measure, memory
from peepsy import Master

#: Long enough that no request of the 100k held for the memory measurement times out.
HELD_TIMEOUT_MS = 300_000  # the longest peepsy allows


async def _run(name: str, config: LaneConfig) -> LaneResult:
    async with Master() as master:
        if config.memory:
            child = [sys.executable, str(BENCH / "children" / "holding.py"), str(config.memory)]
            await master.spawn_child("c0", [*config.child_prefix, *child], "concurrent")

            async def held() -> object:
                return await master.request("echo", "c0", None, timeout=HELD_TIMEOUT_MS)

            async def release(_: Any) -> object:
                return await master.request("release", "c0", None, timeout=HELD_TIMEOUT_MS)

            return await memory(held, release, config.memory)

        argv = [*config.child_prefix, sys.executable, str(BENCH / "echo_child.py")]
        group = name == "peepsy-group4"
        for i in range(4 if group else 1):
            await master.spawn_child(f"c{i}", argv, "concurrent", "g" if group else None)
        if group:
            # least-busy, not round-robin: with five processes on two cores a child that
            # is descheduled for a moment gets no new requests piled on it.
            master.configure_group("g", strategy="least-busy")
        target = "g" if group else "c0"

        async def request(data: Any) -> object:
            return (await master.request("echo", target, data)).data

        return await measure(request, config)


def run(name: str, config: LaneConfig) -> LaneResult:
    return asyncio.run(_run(name, config))
