"""An unmodified Node peepsy worker, idle for a minute under a master with a 200 ms
heartbeat, is still the same running process and answers: exit status 0, or the failed
assertion on stderr.

Run by tests/node/test_node_interop.py as its own process, started when the test session
starts (tests/conftest.py), so that the minute of waiting passes while the other tests
run instead of adding a minute to every run. The minute is what is under test: it is not
a wait for something to happen.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from peepsy import Master

WORKER = str(Path(__file__).resolve().parent / "peepsy_1_0_1_worker.js")
IDLE_S = 60.0


async def main() -> None:
    node = shutil.which("node")
    assert node is not None, "needs Node.js"
    async with Master(heartbeat_interval=200, heartbeat_miss_threshold=3) as master:
        await master.spawn_child("n1", [node, WORKER], transport="node-ipc", stderr="capture")
        pid = master.get_process_stats("n1").pid
        print("spawned", flush=True)
        await asyncio.sleep(IDLE_S)
        stats = master.get_process_stats("n1")
        assert (stats.status, stats.pid, stats.restarts) == ("running", pid, 0), stats
        assert (await master.request("echo", "n1", "still here")).data == "still here"


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
