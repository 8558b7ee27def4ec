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
from peepsy.transport._pipes import limit_reads
from peepsy.transport._process import ExitWatch, SubprocessChildTransport, child_env

CHANNEL_ENV: Final = "NODE_CHANNEL_FD"
MODE_ENV: Final = "NODE_CHANNEL_SERIALIZATION_MODE"
#: How Node.js writes the messages it sends itself on the channel (NODE-1):
#: ``JSON.stringify({cmd: "NODE_...", ...})``, one per line like ours.
CONTROL_MARK: Final = b'{"cmd":"NODE_'

log = logging.getLogger("peepsy.transport")


class ControlFilter:
    """Drops Node's own control lines from the bytes read off its IPC channel, so that
    only peepsy lines reach the protocol core.

    A control line is one that starts with :data:`CONTROL_MARK`; it may arrive split
    over several reads. Inside a JSON string a line start cannot occur, so the mark at
    a line start is always Node's. Reads without the mark pass through untouched, but
    for a short tail held back when it could be the mark's beginning.
    """

    __slots__ = ("_at_start", "_held", "_skipping")

    def __init__(self) -> None:
        self._at_start = True  # the next byte starts a line
        self._held = b""  # a line start that may grow into the mark
        self._skipping = False  # inside a control line, dropping up to its newline

    def feed(self, data: bytes) -> bytes:
        """The peepsy bytes of ``data``: complete lines and partial ones, in order."""
        at_start = self._at_start
        if self._held:
            data = self._held + data
            self._held = b""
            at_start = True
        pos = 0
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return b""
            self._skipping = False
            pos = end + 1
            at_start = True
        if pos == len(data):
            self._at_start = at_start
            return b""
        if data.find(CONTROL_MARK, pos) < 0 and not _tail_may_grow(data, pos, at_start):
            self._at_start = data.endswith(b"\n")
            return data[pos:] if pos else data
        out: list[bytes] = []
        while pos < len(data):
            end = data.find(b"\n", pos)
            line_end = len(data) if end < 0 else end + 1
            if at_start and data.startswith(CONTROL_MARK, pos):
                if end < 0:
                    self._skipping = True
                    return b"".join(out)
            elif at_start and end < 0 and CONTROL_MARK.startswith(data[pos:]):
                self._held = data[pos:]
                return b"".join(out)
            else:
                out.append(data[pos:line_end])
            at_start = end >= 0
            pos = line_end
        self._at_start = at_start
        return b"".join(out)


def _tail_may_grow(data: bytes, pos: int, at_start: bool) -> bool:
    """Whether the read ends inside a line that so far could be the mark's beginning."""
    last = data.rfind(b"\n", pos)
    if last >= 0:
        tail = data[last + 1 :]
    elif at_start:
        tail = data[pos:]
    else:
        return False
    return 0 < len(tail) < len(CONTROL_MARK) and CONTROL_MARK.startswith(tail)


# --- master side ----------------------------------------------------------------------------


class _ChannelProtocol(asyncio.Protocol):
    def __init__(self, owner: _ProcessWatch) -> None:
        self.owner = owner
        self.filter = ControlFilter()

    def data_received(self, data: bytes) -> None:
        data = self.filter.feed(data)
        if data:
            writer = self.owner.writer
            if writer is not None:
                writer.heard()
            self.owner.listener.data_received(data)

    def eof_received(self) -> bool | None:
        self.owner.channel_closed()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:  # a write failed: the worker's end is gone
            self.owner.channel_lost(f"refused a write to its IPC channel ({exc})")
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
        else:  # never dropped silently: the requests it carried fail at once
            self._watch.channel_lost("has its IPC channel closed")

    def close_input(self) -> None:
        """Disconnect the channel: the worker sees ``disconnect``."""
        self.flush()
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def release(self) -> None:
        """Close the IPC channel and asyncio's transport once the process has exited and been
        drained."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._proc.close()


async def spawn_node_ipc(spec: SpawnSpec, listener: TransportListener) -> ChildTransport:
    """Start ``spec.argv`` (typically ``["node", "worker.js"]``) with a Node IPC channel."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        env = child_env(spec.env, spec.inherit_env)
        # None is "the master's environment"; an empty dict is an empty one.
        env = dict(os.environ) if env is None else env
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
    limit_reads(channel)
    transport = NodeIpcTransport(loop, proc, watch, channel)
    watch.transport = transport
    log.debug("spawned %s as pid %s with a Node IPC channel", list(spec.argv), transport.pid)
    return transport


# --- child side -----------------------------------------------------------------------------


class _ReadProtocol(asyncio.Protocol):
    def __init__(self, listener: ChannelListener, channel: LockedChannel) -> None:
        self.listener = listener
        self.channel = channel
        self.filter = ControlFilter()
        self.ended = False

    def data_received(self, data: bytes) -> None:
        data = self.filter.feed(data)
        if data:
            self.channel.heard()
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
        loop = asyncio.get_running_loop()
        self._begin(loop)
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: _ReadProtocol(listener, self), sock=self._sock)
        )
        task.add_done_callback(self._connected)

    def input_fd(self) -> int | None:
        """The socket's descriptor (for watching it for the master's disconnect)."""
        return self._sock.fileno()

    def _connected(
        self, task: asyncio.Task[tuple[asyncio.Transport, asyncio.BaseProtocol]]
    ) -> None:
        self._reader = task.result()[0]
        limit_reads(self._reader)

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
