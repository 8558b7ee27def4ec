"""Echo round trips per second: peepsy against a bare NDJSON pipe, in one run.

    python -m benchmarks.echo [--seconds 2] [--json out.json]

Sequential (one request at a time) and pipelined (a window of requests in flight)
round trips per second for three masters against an echo child: peepsy (master and
child), a bare asyncio master with the least code that talks NDJSON to a subprocess
(the baseline with the same I/O model), and a blocking master with no event loop at all
(the ceiling). Both bare masters talk to the same bare child, a read/answer/write loop.
Only the ratios are meant to travel between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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


def bare_blocking(seconds: float, pipelined: int) -> float:
    """The ceiling: no event loop at all. Write a window of lines, read the answers."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "bare_child.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    fd_in, fd_out = proc.stdin.fileno(), proc.stdout.fileno()
    counter = 0

    def window(size: int) -> None:
        nonlocal counter
        lines = []
        for _ in range(size):
            counter += 1
            msg = {"type": "REQUEST", "id": str(counter), "action": "echo", "data": PAYLOAD}
            lines.append(json.dumps(msg, separators=(",", ":")).encode())
        os.write(fd_in, b"\n".join(lines) + b"\n")
        got, buf = 0, b""
        while got < size:
            buf += os.read(fd_out, 1 << 20)
            *done, buf = buf.split(b"\n")
            for line in done:
                json.loads(line)
            got += len(done)

    size = max(1, pipelined)
    for _ in range(200 // size + 1):
        window(size)
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        window(size)
        done += size
    rate = done / (time.perf_counter() - start)
    proc.stdin.close()
    proc.wait()
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


def _round(seconds: float, window: int) -> dict[str, float]:
    out = {
        "blocking_sequential": bare_blocking(seconds, 1),
        "blocking_pipelined": bare_blocking(seconds, window),
        "bare_sequential": asyncio.run(bare(seconds, 1)),
        "peepsy_sequential": asyncio.run(peepsy_rate(seconds, 1)),
        "bare_pipelined": asyncio.run(bare(seconds, window)),
        "peepsy_pipelined": asyncio.run(peepsy_rate(seconds, window)),
    }
    out["ratio_sequential"] = out["peepsy_sequential"] / out["bare_sequential"]
    out["ratio_pipelined"] = out["peepsy_pipelined"] / out["bare_pipelined"]
    out["ratio_sequential_vs_blocking"] = out["peepsy_sequential"] / out["blocking_sequential"]
    out["ratio_pipelined_vs_blocking"] = out["peepsy_pipelined"] / out["blocking_pipelined"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--window", type=int, default=1000, help="requests in flight when pipelined"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; each alternates baseline and peepsy"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = [_round(args.seconds, args.window) for _ in range(args.repeat)]
    # Medians over rounds; each ratio is taken within its round, so that the baseline and
    # peepsy it compares ran seconds apart under the same conditions.
    results = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    for key, value in results.items():
        if "ratio" in key:
            print(f"{key:20} {value:12.2f}  (rounds: {', '.join(f'{r[key]:.2f}' for r in rounds)})")
        else:
            print(f"{key:20} {value:12.0f} round trips/s")
    if args.json:
        args.json.write_text(json.dumps({"median": results, "rounds": rounds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
