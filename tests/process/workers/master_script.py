"""A master in its own process: spawns children, prints their pids, then waits forever.

The test SIGKILLs this process and checks that its children do not outlive it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from peepsy import Master

HERE = Path(__file__).resolve().parent


async def main() -> None:
    master = Master()
    commands = {
        "peepsy": [sys.executable, str(HERE / "peepsy_worker.py")],
        "raw": [sys.executable, str(HERE / "raw_worker.py"), "--beats", "-1"],
        "node": ["node", str(HERE / "node_worker.js")],
    }
    for target, argv in commands.items():
        await master.spawn_child(target, argv)
    pids = {}
    for target in commands:
        action = "echo" if target != "node" else "add"
        await master.request(action, target, {"a": 1, "b": 2})  # each one is up and serving
        pids[target] = master.get_process_stats(target).pid
    print(json.dumps(pids), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
