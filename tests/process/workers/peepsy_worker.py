"""A peepsy Child with one handler per behaviour the process tests check.

Run as ``python peepsy_worker.py [sequential|concurrent|auto] [--heartbeat MS]``
(``auto``, the default, leaves the mode to the master's INIT; without ``--heartbeat`` the
interval comes from INIT too), or as ``python -m peepsy.child
tests.process.workers.peepsy_worker:child``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any

from peepsy import Child, RemoteError
from peepsy.child import Mode


def build(mode: Mode | None, heartbeat_interval: int | None = None) -> Child:
    child = Child(mode, heartbeat_interval=heartbeat_interval)
    lock = threading.Lock()
    running = 0
    most = 0

    def enter() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    @child.handler("echo")
    async def echo(data: Any) -> Any:
        return data

    @child.handler("add")
    def add(data: dict[str, int]) -> int:
        return data["a"] + data["b"]

    @child.handler("info")
    def info(data: Any) -> dict[str, Any]:
        return {"pid": os.getpid(), "cwd": os.getcwd(), "mode": child.mode}

    @child.handler("env")
    def env(data: str) -> dict[str, Any]:
        return {"value": os.environ.get(data), "names": sorted(os.environ)}

    @child.handler("sleep")
    async def sleep(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    @child.handler("block")
    def block(ms: int) -> int:
        time.sleep(ms / 1000)  # a sync handler that holds its thread
        return ms

    @child.handler("block_loop")
    async def block_loop(ms: int) -> int:
        time.sleep(ms / 1000)  # an async handler that blocks the event loop  # noqa: ASYNC251
        return ms

    @child.handler("spin")
    def spin(ms: int) -> int:
        end = time.monotonic() + ms / 1000
        turns = 0
        while time.monotonic() < end:  # pure Python, holding the GIL between switches
            turns += 1
        return ms

    @child.handler("track")
    async def track(ms: int) -> int:
        enter()
        try:
            await asyncio.sleep(ms / 1000)
        finally:
            leave()
        return most

    @child.handler("track_sync")
    def track_sync(ms: int) -> int:
        enter()
        try:
            time.sleep(ms / 1000)
        finally:
            leave()
        return most

    @child.handler("stderr")
    def stderr(text: str) -> str:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return text

    @child.handler("prints")
    def prints(tag: str) -> str:
        print(f"{tag} via print")
        sys.stdout.write(f"{tag} via sys.stdout\n")
        sys.stdout.flush()
        os.write(1, f"{tag} via fd 1\n".encode())
        return tag

    @child.handler("ask_master")
    async def ask_master(data: Any) -> Any:
        return await child.request("getMasterInfo", data)

    @child.handler("ask_master_failure")
    async def ask_master_failure(action: str) -> dict[str, Any]:
        try:
            await child.request(action, None)
        except RemoteError as exc:
            stack = None if exc.payload is None else exc.payload.stack
            return {
                "status": exc.status,
                "message": exc.message,
                "name": exc.remote_name,
                "code": exc.remote_code,
                "stack": stack if isinstance(stack, str) else None,
            }
        return {"status": 200}

    # Issue 11: long handlers that write what became of them (one word a line) to the
    # file named in their data, so that a test can see whether CANCEL stopped them.

    def mark(path: str, word: str) -> None:
        with open(path, "a", encoding="utf-8") as file:
            file.write(word + "\n")

    @child.handler("sleep_marked")
    async def sleep_marked(data: dict[str, Any]) -> str:
        mark(data["path"], "started")
        try:
            await asyncio.sleep(data["ms"] / 1000)
        except asyncio.CancelledError:
            mark(data["path"], "cancelled")
            raise
        mark(data["path"], "finished")
        return "finished"

    @child.handler("block_marked")
    def block_marked(data: dict[str, Any]) -> str:
        mark(data["path"], "started")
        time.sleep(data["ms"] / 1000)  # deaf to cancellation
        mark(data["path"], "finished")
        return "finished"

    @child.handler("block_cooperative")
    def block_cooperative(data: dict[str, Any]) -> str:
        # Imported here: a test that spawns this worker without PYTHONPATH runs it
        # against whichever peepsy is installed, which may predate issue 11.
        from peepsy import current_request

        mark(data["path"], "started")
        request = current_request()
        if request.wait_cancelled(data["ms"] / 1000):
            mark(data["path"], "cancelled")
            request.raise_if_cancelled()
        mark(data["path"], "finished")
        return "finished"

    @child.handler("exit")
    def exit_now(code: int) -> None:
        os._exit(code)

    return child


child = build(None)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="auto")
    parser.add_argument("--heartbeat", type=int, default=None, help="ms; default: from INIT")
    args = parser.parse_args()
    modes: dict[str, Mode | None] = {
        "auto": None,
        "sequential": "sequential",
        "concurrent": "concurrent",
    }
    build(modes[args.mode], args.heartbeat).run()
