"""Node.js's IPC channel (``child_process.fork``), for both roles.

Node gives a forked child a UNIX socket whose descriptor number is in the child's
environment as ``NODE_CHANNEL_FD``; with ``NODE_CHANNEL_SERIALIZATION_MODE=json`` the
messages on it are JSON objects, one per ``\\n``-terminated line: the peepsy framing.
So a Node peepsy worker can be served by a Python master, and a Python child can serve
a Node peepsy master, with stdout and stderr left free for logs on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import subprocess
import threading
from typing import Final

from peepsy.transport._base import (
    ChannelListener,
    ChildTransport,
    MasterChannel,
    SpawnSpec,
    TransportListener,
)
from peepsy.transport._process import DRAIN_GRACE_S, child_env

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


class _ProcessWatch(asyncio.SubprocessProtocol):
    """Exit and log streams of a Node worker; the protocol is on the socket instead."""

    def __init__(self, listener: TransportListener) -> None:
        self.listener = listener
        self.transport: NodeIpcTransport | None = None
        self.closed = False
        self.exited = False
        self.reported = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._grace: asyncio.TimerHandle | None = None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        # Both of the worker's output streams are logs here.
        self.listener.stderr_received(data)

    def channel_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.eof_received()
            if self.exited:
                self._report()

    def process_exited(self) -> None:
        self.exited = True
        if self.closed:
            self._report()
        else:
            self._grace = asyncio.get_running_loop().call_later(DRAIN_GRACE_S, self._report)

    def _report(self) -> None:
        if self.reported:
            return
        self.reported = True
        if self._grace is not None:
            self._grace.cancel()
        if not self.closed:
            self.closed = True
            self.listener.eof_received()
        code = None
        if self.transport is not None:
            code = self.transport.returncode
            self.transport.release()
        self.listener.process_exited(code)
        if not self.done.done():
            self.done.set_result(None)


class NodeIpcTransport(ChildTransport):
    __slots__ = ("_channel", "_proc", "_watch")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: asyncio.SubprocessTransport,
        watch: _ProcessWatch,
        channel: asyncio.Transport,
    ) -> None:
        super().__init__(loop)
        self._proc = proc
        self._watch = watch
        self._channel: asyncio.Transport | None = channel

    @property
    def pid(self) -> int | None:
        return self._proc.get_pid()

    @property
    def returncode(self) -> int | None:
        return self._proc.get_returncode()

    def _send(self, data: bytes) -> None:
        if self._channel is not None and not self._channel.is_closing():
            self._channel.write(data)

    def close_input(self) -> None:
        """Disconnect the channel: the worker sees ``disconnect``."""
        self.flush()
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def terminate(self) -> None:
        if self._proc.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()

    def kill(self) -> None:
        if self._proc.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def wait(self) -> int | None:
        await asyncio.shield(self._watch.done)
        return self._proc.get_returncode()

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


class NodeIpcChannel(MasterChannel):
    """A Python child's link to a Node master that forked it (``NODE_CHANNEL_FD``).

    The master's disconnect is this child's end of input (STREAM-3). stdout stays the
    child's own: prints are just logs here.
    """

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Transport | None = None
        self._closed = False

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

    def write(self, data: bytes) -> None:
        if self._scheduled:
            self._pending.append(data)
            return
        if self._loop is None:
            return
        self._scheduled = True
        self._loop.call_soon(self.flush)
        self.write_now(data)

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self.write_now(data)

    def write_now(self, data: bytes) -> None:
        # asyncio made the socket non-blocking; the heartbeat thread may write too, so
        # writes go out whole under a lock, waiting for room when the buffer is full.
        with self._lock:
            if self._closed:
                return
            view = memoryview(data)
            try:
                while view:
                    try:
                        sent = self._sock.send(view)
                    except BlockingIOError:
                        select.select([], [self._sock], [], 1.0)
                        continue
                    view = view[sent:]
            except OSError:
                self._closed = True  # the master is gone; disconnect ends this child

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        else:
            self._sock.close()
