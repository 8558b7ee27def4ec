"""A child's channel to its master over standard input and output (spec STREAM-1..4)."""

from __future__ import annotations

import asyncio
import os
import sys

from peepsy.transport._base import ChannelListener, LockedChannel
from peepsy.transport._pipes import limit_reads


class _ReadProtocol(asyncio.Protocol):
    def __init__(self, listener: ChannelListener, channel: LockedChannel) -> None:
        self.listener = listener
        self.channel = channel

    def data_received(self, data: bytes) -> None:
        self.channel.heard()
        self.listener.data_received(data)

    def eof_received(self) -> bool | None:
        self.listener.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class StdioChannel(LockedChannel):
    """Protocol lines on the original stdin/stdout; everything else kept off them.

    On :meth:`start` the channel takes private copies of file descriptors 0 and 1, then
    points fd 1 (and ``sys.stdout``) at stderr and fd 0 at ``/dev/null``. A stray
    ``print()``, a library writing to stdout, even a C extension writing to fd 1, all
    land on stderr and cannot corrupt the protocol stream (STREAM-1).
    """

    def __init__(self, *, protect_stdio: bool = True) -> None:
        super().__init__()
        self._protect = protect_stdio
        self._out_fd = -1
        self._in_fd = -1
        self._reader: asyncio.ReadTransport | None = None

    def start(self, listener: ChannelListener) -> None:
        loop = asyncio.get_running_loop()
        self._begin(loop)
        sys.stdout.flush()
        self._out_fd = os.dup(1)
        self._in_fd = os.dup(0)
        if self._protect:
            os.dup2(2, 1)
            sys.stdout = sys.stderr
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
        reader = os.fdopen(self._in_fd, "rb", buffering=0)
        task = loop.create_task(
            loop.connect_read_pipe(lambda: _ReadProtocol(listener, self), reader)
        )
        task.add_done_callback(self._connected)

    def input_fd(self) -> int | None:
        """The descriptor the master's bytes arrive on, once started (for watching it)."""
        return self._in_fd if self._in_fd >= 0 else None

    def _connected(
        self, task: asyncio.Task[tuple[asyncio.ReadTransport, asyncio.BaseProtocol]]
    ) -> None:
        self._reader = task.result()[0]
        limit_reads(self._reader)

    def _write_all(self, view: memoryview) -> None:
        if self._out_fd < 0:
            return
        while view:
            view = view[os.write(self._out_fd, view) :]

    def close(self) -> None:
        self.flush()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        with self._lock:
            self._closed = True
            if self._out_fd >= 0:
                os.close(self._out_fd)
                self._out_fd = -1
