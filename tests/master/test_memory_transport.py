"""The in-memory launcher and transport that the master tests run on: it must behave
like a pipe to a process (ordering, batching, end of input, exit codes)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from peepsy.transport import (
    ChannelListener,
    ChildTransport,
    MasterChannel,
    MemoryLauncher,
    SpawnSpec,
)
from tests.master._support import run, settle, until


class Recorder:
    """The master's side: a TransportListener that logs every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def stderr_received(self, data: bytes) -> None:  # pragma: no cover - no stderr in memory
        self.calls.append(("stderr", data))

    def eof_received(self) -> None:
        self.calls.append(("eof", None))

    def channel_broken(self, reason: str) -> None:  # pragma: no cover - memory never breaks
        self.calls.append(("broken", reason))

    def process_exited(self, returncode: int | None) -> None:
        self.calls.append(("exit", returncode))

    @property
    def data(self) -> list[bytes]:
        return [value for kind, value in self.calls if kind == "data"]


class Worker:
    """The child's side: records what it receives; the test scripts how it ends."""

    def __init__(
        self, *, delay_start: asyncio.Event | None = None, last_words: bytes = b""
    ) -> None:
        self.last_words = last_words
        self.received: list[bytes] = []
        self.eof = False
        self.channel: MasterChannel | None = None
        self.delay_start = delay_start
        self.result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def serve(self, channel: MasterChannel) -> int:
        if self.delay_start is not None:
            await self.delay_start.wait()
        self.channel = channel
        listener: ChannelListener = self
        channel.start(listener)
        code = await self.result
        if self.last_words:
            # Write, close the channel and exit in the same step, as Child.serve does.
            channel.write(self.last_words)
            channel.close()
        return code

    def data_received(self, data: bytes) -> None:
        self.received.append(data)

    def eof_received(self) -> None:
        self.eof = True


async def start(**options: Any) -> tuple[ChildTransport, Recorder, Worker]:
    made: list[Worker] = []

    def factory(spec: SpawnSpec) -> Worker:
        worker = Worker(**options)
        made.append(worker)
        return worker

    recorder = Recorder()
    transport = await MemoryLauncher({"w": factory}).spawn(SpawnSpec(argv=["w"]), recorder)
    return transport, recorder, made[0]


def test_unknown_commands_are_file_not_found() -> None:
    async def main() -> None:
        launcher = MemoryLauncher({})
        with pytest.raises(FileNotFoundError, match="no in-memory child named 'x'"):
            await launcher.spawn(SpawnSpec(argv=["x"]), Recorder())
        with pytest.raises(FileNotFoundError, match="''"):
            await launcher.spawn(SpawnSpec(argv=[]), Recorder())

    run(main())


def test_bytes_written_before_the_child_starts_wait_for_it() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        transport, _, worker = await start(delay_start=gate)
        assert transport.pid is not None
        assert transport.returncode is None
        transport.write(b"one\n")
        transport.write(b"two\n")
        transport.close_input()
        await settle()
        assert worker.received == []
        gate.set()
        await until(lambda: worker.eof)
        assert b"".join(worker.received) == b"one\ntwo\n"
        transport.write(b"after close\n")
        await settle()
        assert b"after close" not in b"".join(worker.received)
        worker.result.set_result(0)
        assert await transport.wait() == 0

    run(main())


def test_input_arrives_in_a_later_pass_and_end_of_input_after_it() -> None:
    async def main() -> None:
        transport, _, worker = await start()
        await until(lambda: worker.channel is not None)
        transport.write(b"a\n")
        transport.write(b"b\n")
        assert worker.received == []
        transport.close_input()
        transport.close_input()  # twice is harmless
        await settle()
        assert b"".join(worker.received) == b"a\nb\n"
        assert worker.eof
        worker.result.set_result(0)
        await transport.wait()

    run(main())


def test_output_is_batched_per_loop_pass_and_flushed_before_the_exit() -> None:
    async def main() -> None:
        transport, recorder, worker = await start()
        await until(lambda: worker.channel is not None)
        channel = worker.channel
        assert channel is not None
        channel.write(b"x\n")
        channel.write(b"y\n")
        await settle()
        assert recorder.data == [b"x\ny\n"]
        # Written, then the child ends at once: the bytes still come before the exit.
        channel.write(b"last\n")
        worker.result.set_result(3)
        assert await transport.wait() == 3
        await settle()
        assert recorder.calls[-3:] == [("data", b"last\n"), ("eof", None), ("exit", 3)]
        # A closed channel drops what is written to it.
        channel.write(b"ghost\n")
        channel.write_now(b"ghost\n")
        await settle()
        assert b"ghost\n" not in recorder.data
        transport.write(b"to a dead child\n")
        await settle()
        assert worker.received == []

    run(main())


def test_last_words_written_as_the_child_exits_still_arrive_first() -> None:
    async def main() -> None:
        transport, recorder, worker = await start(last_words=b"bye\n")
        await until(lambda: worker.channel is not None)
        worker.result.set_result(0)
        assert await transport.wait() == 0
        await settle()
        assert recorder.calls == [("data", b"bye\n"), ("eof", None), ("exit", 0)]

    run(main())


def test_write_now_works_from_another_thread() -> None:
    async def main() -> None:
        transport, recorder, worker = await start()
        await until(lambda: worker.channel is not None)
        channel = worker.channel
        assert channel is not None
        thread = threading.Thread(target=channel.write_now, args=(b"beat\n",))
        thread.start()
        thread.join()
        await until(lambda: recorder.data == [b"beat\n"])
        worker.result.set_result(0)
        await transport.wait()

    run(main())


@pytest.mark.parametrize(("how", "code"), [("terminate", -15), ("kill", -9)])
def test_terminate_and_kill_end_the_child_with_a_signal_code(how: str, code: int) -> None:
    async def main() -> None:
        transport, recorder, worker = await start()
        await until(lambda: worker.channel is not None)
        getattr(transport, how)()
        assert await transport.wait() == code
        assert transport.returncode == code
        assert recorder.calls[-2:] == [("eof", None), ("exit", code)]
        transport.kill()  # after the exit: nothing happens
        assert transport.returncode == code

    run(main())


def test_a_child_that_raises_exits_with_1() -> None:
    async def main() -> None:
        transport, recorder, worker = await start()
        await until(lambda: worker.channel is not None)
        worker.result.set_exception(RuntimeError("boom"))
        assert await transport.wait() == 1
        assert recorder.calls[-1] == ("exit", 1)

    run(main())
