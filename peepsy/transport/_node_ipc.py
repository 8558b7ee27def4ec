"""Node.js's IPC channel (``child_process.fork``), for both roles.

Node gives a forked child a UNIX socket whose descriptor number is in the child's
environment as ``NODE_CHANNEL_FD``; with ``NODE_CHANNEL_SERIALIZATION_MODE=json`` the
messages on it are JSON objects, one per ``\\n``-terminated line: the peepsy framing.
So a Node peepsy worker can be served by a Python master, and a Python child can serve
a Node peepsy master, with stdout and stderr left free for logs on both sides.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import subprocess
from typing import Final

from peepsy.transport._base import (
    ChannelListener,
    ChildTransport,
    LockedChannel,
    SpawnSpec,
    TransportListener,
)
from peepsy.transport._process import ExitWatch, SubprocessChildTransport, child_env

CHANNEL_ENV: Final = "NODE_CHANNEL_FD"
MODE_ENV: Final = "NODE_CHANNEL_SERIALIZATION_MODE"

log = logging.getLogger("peepsy.transport")


# --- master side ----------------------------------------------------------------------------


class _ChannelProtocol(asyncio.Protocol):
    def __init__(self, owner: _ProcessWatch) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner.listener.data_received(data)

    def eof_received(self) -> bool | None:
        self.owner.channel_closed()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.channel_closed()


class _ProcessWatch(ExitWatch):
    """Exit and log streams of a Node worker; its protocol is on the socket instead."""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        # Both of the worker's output streams are logs here.
        self.listener.stderr_received(data)


class NodeIpcTransport(SubprocessChildTransport):
    """The protocol on the Node IPC socket; the worker's stdout and stderr are logs."""

    __slots__ = ("_channel",)

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: asyncio.SubprocessTransport,
        watch: _ProcessWatch,
        channel: asyncio.Transport,
    ) -> None:
        super().__init__(loop, proc, watch)
        self._channel: asyncio.Transport | None = channel

    def _send(self, data: bytes) -> None:
        if self._channel is not None and not self._channel.is_closing():
            self._channel.write(data)

    def close_input(self) -> None:
        """Disconnect the channel: the worker sees ``disconnect``."""
        self.flush()
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def release(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._proc.close()


async def spawn_node_ipc(spec: SpawnSpec, listener: TransportListener) -> ChildTransport:
    """Start ``spec.argv`` (typically ``["node", "worker.js"]``) with a Node IPC channel."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        env = child_env(spec.env, spec.inherit_env) or dict(os.environ)
        env[CHANNEL_ENV] = str(theirs.fileno())
        env[MODE_ENV] = "json"
        out = (
            None
            if spec.stderr == "inherit"
            else (subprocess.DEVNULL if spec.stderr == "discard" else subprocess.PIPE)
        )
        watch = _ProcessWatch(listener)
        proc, _ = await loop.subprocess_exec(
            lambda: watch,
            *spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd=spec.cwd,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    channel, _ = await loop.connect_accepted_socket(lambda: _ChannelProtocol(watch), sock=ours)
    transport = NodeIpcTransport(loop, proc, watch, channel)
    watch.transport = transport
    log.debug("spawned %s as pid %s with a Node IPC channel", list(spec.argv), transport.pid)
    return transport


# --- child side -----------------------------------------------------------------------------


class _ReadProtocol(asyncio.Protocol):
    def __init__(self, listener: ChannelListener) -> None:
        self.listener = listener
        self.ended = False

    def data_received(self, data: bytes) -> None:
        self.listener.data_received(data)

    def eof_received(self) -> bool | None:
        self._end()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self.listener.eof_received()


class NodeIpcChannel(LockedChannel):
    """A Python child's link to a Node master that forked it (``NODE_CHANNEL_FD``).

    The master's disconnect is this child's end of input (STREAM-3). stdout stays the
    child's own: prints are just logs here.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._sock = socket.socket(fileno=fd)
        self._reader: asyncio.Transport | None = None

    @classmethod
    def from_environment(cls) -> NodeIpcChannel | None:
        """The channel Node passed to this process, if any; the variables are removed so
        that processes this child starts do not take the channel for theirs."""
        fd = os.environ.pop(CHANNEL_ENV, None)
        mode = os.environ.pop(MODE_ENV, "json")
        if fd is None:
            return None
        if mode != "json":
            raise RuntimeError(f"Node IPC serialization {mode!r} is not supported; use 'json'")
        return cls(int(fd))

    def start(self, listener: ChannelListener) -> None:
        self._loop = loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: _ReadProtocol(listener), sock=self._sock)
        )
        task.add_done_callback(self._connected)

    def _connected(
        self, task: asyncio.Task[tuple[asyncio.Transport, asyncio.BaseProtocol]]
    ) -> None:
        self._reader = task.result()[0]

    def _write_all(self, view: memoryview) -> None:
        # asyncio made the socket non-blocking: wait for room when its buffer is full.
        while view:
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                select.select([], [self._sock], [], 1.0)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        else:
            self._sock.close()
