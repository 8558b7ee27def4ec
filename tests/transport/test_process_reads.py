"""A child's stdout reaches the master at once, and its end still comes after its data."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from peepsy.transport import ProcessLauncher, SpawnSpec
from peepsy.transport._process import ProcessTransport, _ReadsAtOnce
from tests.process._support import run

#: Writes three lines in three writes, then exits.
THREE_LINES_THEN_EXIT = "import os\nfor n in range(3):\n    os.write(1, b'line %d\\n' % n)\n"


class _Log:
    """A transport listener that records what it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.exited = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", data))

    def stderr_received(self, data: bytes) -> None:
        self.events.append(("stderr", data))

    def eof_received(self) -> None:
        self.events.append(("eof", None))

    def channel_broken(self, reason: str) -> None:
        self.events.append(("broken", reason))

    def process_exited(self, returncode: int | None) -> None:
        self.events.append(("exit", returncode))
        self.exited.set()


def test_a_read_reaches_the_listener_inside_the_read_not_a_loop_pass_later() -> None:
    async def main() -> None:
        log = _Log()
        transport = await ProcessLauncher().spawn(
            SpawnSpec([sys.executable, "-c", "import sys; sys.stdin.read()"]), log
        )
        assert isinstance(transport, ProcessTransport)
        try:
            stdout: Any = transport._proc.get_pipe_transport(1)
            reader = stdout.get_protocol()
            assert isinstance(reader, _ReadsAtOnce)
            transport._wrote = True  # as after a request written at once
            reader.data_received(b"hello\n")  # what the pipe transport does on a read
            assert log.events == [("data", b"hello\n")]  # no await in between
            assert not transport._wrote  # and the writer heard the child
        finally:
            transport.close_input()
            await transport.wait()

    run(main())


def test_every_line_a_child_wrote_arrives_before_its_end_and_its_exit() -> None:
    async def main() -> None:
        log = _Log()
        transport = await ProcessLauncher().spawn(
            SpawnSpec([sys.executable, "-c", THREE_LINES_THEN_EXIT]), log
        )
        await asyncio.wait_for(log.exited.wait(), 30)
        kinds = [kind for kind, _ in log.events]
        assert kinds[-2:] == ["eof", "exit"]
        assert set(kinds[:-2]) == {"data"}
        assert b"".join(data for _, data in log.events[:-2]) == b"line 0\nline 1\nline 2\n"
        assert log.events[-1] == ("exit", 0)
        await transport.wait()

    run(main())
