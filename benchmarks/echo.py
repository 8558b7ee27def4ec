"""Echo round trips per second: peepsy against a bare NDJSON pipe, in one run.

    python -m benchmarks.echo [--seconds 2] [--json out.json]

Four figures: sequential (one request at a time) and pipelined (many in flight) for
the baseline and for peepsy. The baseline master is the least asyncio code that talks
NDJSON to a subprocess; the baseline child is a blocking read/answer/flush loop. Only
the ratios peepsy/baseline are meant to travel between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from peepsy import Master

HERE = Path(__file__).resolve().parent
PAYLOAD = {"n": 1, "text": "hello"}


class _BareProtocol(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.buf = b""
        self.waiting: dict[str, asyncio.Future[Any]] = {}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        data = self.buf + data
        *lines, self.buf = data.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if msg.get("type") == "RESPONSE":
                self.waiting.pop(msg["id"]).set_result(msg.get("data"))


async def bare(seconds: float, pipelined: int, child: str = "bare_child.py") -> float:
    loop = asyncio.get_running_loop()
    proto = _BareProtocol()
    transport, _ = await loop.subprocess_exec(
        lambda: proto, sys.executable, str(HERE / child), stdin=-1, stdout=-1, stderr=None
    )
    stdin = transport.get_pipe_transport(0)
    assert isinstance(stdin, asyncio.WriteTransport)
    counter = 0

    async def one() -> None:
        nonlocal counter
        counter += 1
        rid = str(counter)
        fut = loop.create_future()
        proto.waiting[rid] = fut
        msg = {"type": "REQUEST", "id": rid, "action": "echo", "data": PAYLOAD}
        stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        await fut

    rate = await _measure(one, seconds, pipelined)
    stdin.close()
    transport.close()
    return rate


async def peepsy_rate(seconds: float, pipelined: int, child: str = "echo_child.py") -> float:
    async with Master() as master:
        await master.spawn_child("echo", [sys.executable, str(HERE / child)], "concurrent")

        async def one() -> None:
            await master.request("echo", "echo", PAYLOAD)

        return await _measure(one, seconds, pipelined)


async def _measure(one: Any, seconds: float, pipelined: int) -> float:
    for _ in range(200):  # warm up
        await one()
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    if pipelined <= 1:
        while time.perf_counter() < deadline:
            for _ in range(100):
                await one()
            done += 100
    else:
        while time.perf_counter() < deadline:
            await asyncio.gather(*(one() for _ in range(pipelined)))
            done += pipelined
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--window", type=int, default=1000, help="requests in flight when pipelined"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {
        "bare_sequential": asyncio.run(bare(args.seconds, 1)),
        "peepsy_sequential": asyncio.run(peepsy_rate(args.seconds, 1)),
        "bare_pipelined": asyncio.run(bare(args.seconds, args.window)),
        "peepsy_pipelined": asyncio.run(peepsy_rate(args.seconds, args.window)),
    }
    results["ratio_sequential"] = results["peepsy_sequential"] / results["bare_sequential"]
    results["ratio_pipelined"] = results["peepsy_pipelined"] / results["bare_pipelined"]
    for key, value in results.items():
        print(
            f"{key:20} {value:12.2f}" if "ratio" in key else f"{key:20} {value:12.0f} round trips/s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
