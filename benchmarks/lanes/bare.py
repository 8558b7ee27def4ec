"""The bare asyncio pipe: the least asyncio code that sends peepsy's NDJSON envelopes to
a subprocess and matches the answers by id, with the stdlib json or a fast codec."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks.common import REQUEST_TIMEOUT_MS, Codec, LaneConfig, LaneResult, codec
from benchmarks.lanes import BENCH
from benchmarks.lanes._harness import measure, memory


class BareMaster(asyncio.SubprocessProtocol):
    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.parts: list[bytes] = []
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.counter = 0
        self.stdin: asyncio.WriteTransport | None = None
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_exited(self) -> None:
        self.exited.set_result(None)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        if b"\n" not in data:  # part of a long line: joined once, when its end arrives
            self.parts.append(data)
            return
        *lines, rest = data.split(b"\n")
        if self.parts:
            lines[0] = b"".join([*self.parts, lines[0]])
        self.parts = [rest] if rest else []
        loads = self.codec.loads
        for line in lines:
            msg = loads(line)
            if msg.get("type") == "RESPONSE":
                self.waiting.pop(msg["id"]).set_result(msg.get("data"))

    def request(
        self, data: Any, action: str = "echo", timeout: int = REQUEST_TIMEOUT_MS
    ) -> asyncio.Future[Any]:
        self.counter += 1
        rid = str(self.counter)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        msg = {"type": "REQUEST", "id": rid, "action": action, "data": data, "timeout": timeout}
        assert self.stdin is not None
        self.stdin.write(self.codec.dumps(msg) + b"\n")
        return fut


async def _run(name: str, config: LaneConfig) -> LaneResult:
    codec_name = config.codec if name == "bare-fast" else "json"
    if config.memory:
        child = [str(BENCH / "children" / "holding.py"), str(config.memory)]
    else:
        child = [str(BENCH / "children" / "ndjson_echo.py"), codec_name]
    proto = BareMaster(codec(codec_name))
    loop = asyncio.get_running_loop()
    transport, _ = await loop.subprocess_exec(
        lambda: proto, *config.child_prefix, sys.executable, *child, stdin=-1, stdout=-1
    )
    stdin = transport.get_pipe_transport(0)
    assert isinstance(stdin, asyncio.WriteTransport)
    proto.stdin = stdin
    # Reads of 64 KiB, as peepsy's: asyncio's default of 256 KiB maps and unmaps a fresh
    # buffer per read (past glibc's mmap threshold), which a fair baseline does not pay.
    transport.get_pipe_transport(1).max_size = 1 << 16  # type: ignore[union-attr]
    try:
        if config.memory:

            async def held() -> object:
                return await proto.request(None, timeout=300_000)

            async def release(_: Any) -> object:
                return await proto.request(None, "release", 300_000)

            result = await memory(held, release, config.memory)
        else:

            async def request(data: Any) -> object:
                return await proto.request(data)

            result = await measure(request, config)
    finally:
        stdin.close()  # end of input: the child exits on its own
        await asyncio.wait_for(proto.exited, 10)
        transport.close()
    result["codec"] = codec_name
    return result


def run(name: str, config: LaneConfig) -> LaneResult:
    return asyncio.run(_run(name, config))
