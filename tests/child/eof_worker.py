"""A peepsy Child whose handlers never end in time, for the end-of-input tests
(``tests/process/test_child_eof.py``): run as ``python eof_worker.py MODE [EOF_GRACE_MS]``.

Each handler says on stderr that it has started (``started ACTION``), so that the test
knows it runs before it closes the input. They run for 60 s, or for ever: asynchronous,
synchronous (on a thread), and blocking the event loop itself.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

from peepsy import Child
from peepsy.child import Mode

MINUTE_S = 60


def build(mode: Mode, eof_grace: int | None) -> Child:
    child = Child(mode) if eof_grace is None else Child(mode, eof_grace=eof_grace)

    def started(action: str) -> None:
        sys.stderr.write(f"started {action}\n")
        sys.stderr.flush()

    @child.handler("echo")
    async def echo(data: Any) -> Any:
        return data

    @child.handler("sleep")
    async def sleep(data: Any) -> None:
        started("sleep")
        await asyncio.sleep(MINUTE_S)

    @child.handler("block")
    def block(data: Any) -> None:
        started("block")
        time.sleep(MINUTE_S)

    @child.handler("hang")
    def hang(data: Any) -> None:
        started("hang")
        threading.Event().wait()

    @child.handler("spin")
    def spin(data: Any) -> None:
        started("spin")
        while True:
            pass

    @child.handler("block_loop")
    async def block_loop(data: Any) -> None:
        started("block_loop")
        time.sleep(MINUTE_S)  # noqa: ASYNC251 - the point: the event loop is held

    @child.handler("spin_loop")
    async def spin_loop(data: Any) -> None:
        started("spin_loop")
        while True:
            pass

    return child


if __name__ == "__main__":
    grace = int(sys.argv[2]) if len(sys.argv) > 2 else None
    mode: Mode = "concurrent" if sys.argv[1] == "concurrent" else "sequential"
    build(mode, grace).run()
