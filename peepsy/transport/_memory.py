"""In-memory transports: children that run in this process, for tests and docs.

:class:`MemoryLauncher` starts a child by calling a factory that returns any object with
``async serve(channel)`` (a :class:`~peepsy.Child` has one), and connects it to the
master through in-memory pipes. No process, no file descriptor, same bytes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from typing import Protocol

from peepsy.transport._base import (
    ChannelListener,
    ChildTransport,
    Launcher,
    MasterChannel,
    SpawnSpec,
    TransportListener,
)

SIGTERM_CODE = -15
SIGKILL_CODE = -9


class Servable(Protocol):
    async def serve(self, channel: MasterChannel) -> int: ...


ChildFactory = Callable[[SpawnSpec], Servable]
_pids = itertools.count(100_000)


class MemoryChannel(MasterChannel):
    """The child's end of an in-memory pair. Like a pipe, it delivers asynchronously:
    lines written in one loop iteration reach the master together, in the next."""

    def __init__(self, transport: MemoryTransport) -> None:
        self._transport = transport
        self._listener: ChannelListener | None = None
        self._closed = False
        self._pending: list[bytes] = []

    def start(self, listener: ChannelListener) -> None:
        self._listener = listener
        self._transport._channel_started()

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        if not self._pending:
            self._transport._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        if data:
            self._transport._from_child(data)

    def write_now(self, data: bytes) -> None:
        if not self._closed:
            self._transport._loop.call_soon_threadsafe(self._transport._from_child, data)

    def close(self) -> None:
        if self._pending:
            self._flush()
        self._closed = True

    def _deliver(self, data: bytes) -> None:
        if self._listener is not None:
            self._listener.data_received(data)

    def _eof(self) -> None:
        if self._listener is not None:
            self._listener.eof_received()


class MemoryTransport(ChildTransport):
    """The master's end of an in-memory pair; the "process" is a task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, listener: TransportListener) -> None:
        super().__init__(loop)
        self._listener = listener
        self._pid = next(_pids)
        self._returncode: int | None = None
        self._input_open = True
        self._backlog: list[bytes] = []
        self._eof_pending = False
        self.channel = MemoryChannel(self)
        self._task: asyncio.Task[int] | None = None
        self._done: asyncio.Future[None] = loop.create_future()
        self._started = False
        self._forced = SIGKILL_CODE

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def run(self, child: Servable) -> None:
        """Serve ``child`` on this transport's channel, as a task of the running loop."""
        self._task = self._loop.create_task(child.serve(self.channel))
        self._task.add_done_callback(self._finished)

    def _channel_started(self) -> None:
        self._started = True
        backlog, self._backlog = self._backlog, []
        for data in backlog:
            self.channel._deliver(data)
        if self._eof_pending:
            self.channel._eof()

    def _send(self, data: bytes) -> None:
        # Like a pipe: the bytes arrive in a later loop pass, never inside write().
        self._loop.call_soon(self._arrive, data)

    def _arrive(self, data: bytes) -> None:
        if not self._input_open or self._returncode is not None:
            return
        if self._started:
            self.channel._deliver(data)
        else:
            self._backlog.append(data)

    def _from_child(self, data: bytes) -> None:
        if self._returncode is None:
            self.heard()
            self._listener.data_received(data)

    def close_input(self) -> None:
        self.flush()
        # After the bytes already written (call_soon keeps order).
        self._loop.call_soon(self._close_input)

    def _close_input(self) -> None:
        if self._input_open:
            self._input_open = False
            if self._started:
                self.channel._eof()
            else:
                self._eof_pending = True

    def terminate(self) -> None:
        self._stop(SIGTERM_CODE)

    def kill(self) -> None:
        self._stop(SIGKILL_CODE)

    def _stop(self, code: int) -> None:
        if self._returncode is None and self._task is not None and not self._task.done():
            self._forced = code
            self._task.cancel()

    def _finished(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            code = self._forced
        elif task.exception() is not None:
            code = 1
        else:
            code = task.result()
        self.channel.close()
        self._returncode = code
        self._listener.eof_received()
        self._listener.process_exited(code)
        self._done.set_result(None)

    async def wait(self) -> int | None:
        await asyncio.shield(self._done)
        return self._returncode


class MemoryLauncher(Launcher):
    """Starts children in this process. ``factories`` maps a command's first word to a
    function that builds the child from the spawn spec."""

    def __init__(self, factories: Mapping[str, ChildFactory]) -> None:
        self._factories = dict(factories)

    async def spawn(self, spec: SpawnSpec, listener: TransportListener) -> ChildTransport:
        name = spec.argv[0] if spec.argv else ""
        factory = self._factories.get(name)
        if factory is None:
            raise FileNotFoundError(f"no in-memory child named {name!r}")
        loop = asyncio.get_running_loop()
        transport = MemoryTransport(loop, listener)
        transport.run(factory(spec))
        return transport
