"""The transport interface: the only place where bytes meet pipes, processes and loops.

A master sees each child through a :class:`ChildTransport`, made by a :class:`Launcher`.
A child sees its master through a :class:`MasterChannel`. Both hand received bytes to a
listener as they arrive and batch outgoing lines: every ``write`` in one event-loop
iteration leaves in a single system call.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

StderrMode = Literal["inherit", "log", "capture", "discard"]
TransportKind = Literal["stdio", "node-ipc"]


@dataclass(frozen=True, slots=True)
class SpawnSpec:
    """How to start one child: the command, its environment and working directory.

    ``env`` is added to the master's environment, or replaces it when ``inherit_env`` is
    false. ``transport`` is ``stdio`` (the protocol on the child's stdin/stdout) or
    ``node-ipc`` (on Node's IPC channel, for Node peepsy workers; their stdout and
    stderr are then both logs, handled as ``stderr`` says).
    """

    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    inherit_env: bool = True
    cwd: str | None = None
    stderr: StderrMode = "inherit"
    transport: TransportKind = "stdio"
    extra: Mapping[str, object] = field(default_factory=dict)


class TransportListener(Protocol):
    """What a transport reports to the master's side of one child."""

    def data_received(self, data: bytes) -> None:
        """Bytes read from the child's protocol stream (stdout, or its Node IPC channel),
        as they came: not split into lines."""

    def stderr_received(self, data: bytes) -> None:
        """Bytes the child wrote to stderr, when the spec's ``stderr`` mode is ``"log"`` or
        ``"capture"`` (and, for ``node-ipc``, its stdout too)."""

    def eof_received(self) -> None:
        """The child closed its protocol stream: no more data will come."""

    def channel_broken(self, reason: str) -> None:
        """The channel to the child is gone while its process still runs: it closed
        its protocol stream and did not exit, or a write to it failed. ``reason``
        completes "<target> ...", e.g. "closed its protocol stream"."""

    def process_exited(self, returncode: int | None) -> None:
        """The child's process has exited, with ``returncode`` (negative: killed by that signal;
        ``None`` when unknown), and its output has been drained."""


#: How many bytes of a burst gather before they leave early, ahead of the rest of the
#: loop pass (see :class:`BatchingWriter`).
EARLY_BYTES: Final = 4096
#: What ``_room`` is set to once a pass has written early: no second early write.
_SPENT: Final = 1 << 62


class BatchingWriter:
    """Writes a line at once when it is the first since the peer was last heard from (or
    since the last batch), and batches the lines that follow it until the loop
    iteration ends, into one write.

    A lone request (sequential traffic: each write follows the answer to the one before)
    leaves at once and costs the loop nothing more; a burst (pipelined traffic) costs
    one system call for the whole burst after its first line, and one loop pass to flush.

    One exception: once a burst has gathered :data:`EARLY_BYTES`, those lines leave
    then, and only the rest of the pass waits for its end. The peer, on another core,
    starts on them while this side is still producing the others; held to the end of
    the pass, the two sides took turns instead. Measured at 64 requests in flight, one
    child on its own core: about 78k to 121k round trips/s (docs/performance.md). Only
    once per pass: more early writes cost more system calls than they gained at 512
    in flight.
    """

    __slots__ = ("_loop", "_pending", "_room", "_scheduled", "_wrote")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[bytes] = []
        #: Bytes a burst may still gather before its lines leave early.
        self._room = EARLY_BYTES
        self._scheduled = False
        #: A line went out at once, and nothing has been heard or flushed since.
        self._wrote = False

    def write(self, data: bytes) -> None:
        """Send ``data`` (whole lines) to the peer: at once when it is the first line since
        the peer was last heard from, otherwise with the lines batched after it."""
        if not self._scheduled:
            if not self._wrote:
                self._wrote = True
                self._send(data)
                return
            # A second line before any answer: likely a burst, so batch from here on.
            self._scheduled = True
            self._room = EARLY_BYTES
            self._loop.call_soon(self.flush)
        pending = self._pending
        pending.append(data)
        room = self._room - len(data)
        self._room = room
        if room <= 0:
            self._room = _SPENT
            self._send(pending[0] if len(pending) == 1 else b"".join(pending))
            pending.clear()

    def heard(self) -> None:
        """The peer sent something: the next line is again the first of its kind, and goes
        at once (no flush is scheduled for it, so sequential traffic never waits a loop
        pass). Called by the transport for each read."""
        self._wrote = False

    def flush(self) -> None:
        """Send the lines batched since the first, now (called by the loop when the
        iteration ends; call it yourself before closing)."""
        self._scheduled = False
        self._wrote = False
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._send(data)

    def _send(self, data: bytes) -> None:
        raise NotImplementedError


class ChildTransport(BatchingWriter, ABC):
    """The master's handle on one child: its input, its output, its process."""

    __slots__ = ()

    @property
    @abstractmethod
    def pid(self) -> int | None:
        """The child's process id, or ``None`` when it has none (an in-memory child)."""

    @property
    @abstractmethod
    def returncode(self) -> int | None:
        """The exit status once the child has exited (negative: killed by that signal)."""

    @abstractmethod
    def close_input(self) -> None:
        """Close the child's standard input; the child sees end of file."""

    @abstractmethod
    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM for a process); a child already gone is not an error."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the child at once (SIGKILL for a process); a child already gone is not an error."""

    @abstractmethod
    async def wait(self) -> int | None:
        """Wait until the child has exited and its output is drained."""


class Launcher(ABC):
    """Starts children. :class:`~peepsy.transport.ProcessLauncher` runs real processes;
    :class:`~peepsy.transport.MemoryLauncher` runs Python children in this process."""

    @abstractmethod
    async def spawn(self, spec: SpawnSpec, listener: TransportListener) -> ChildTransport:
        """Start the child ``spec`` describes and report what it sends to ``listener``.

        Raises:
            PeepsyProcessError: the child could not be started (no such program, no
                permission, ...).
        """


class ChannelListener(Protocol):
    """What a channel reports to a child."""

    def data_received(self, data: bytes) -> None:
        """Bytes read from the master, as they came: not split into lines."""

    def eof_received(self) -> None:
        """The master closed its end: no more data will come (the child then shuts down)."""


class MasterChannel(ABC):
    """A child's link to its master."""

    @abstractmethod
    def start(self, listener: ChannelListener) -> None:
        """Start reading from the master on the running loop and report to ``listener``."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue a line; lines written in one loop iteration go out together."""

    @abstractmethod
    def write_now(self, data: bytes) -> None:
        """Write a whole line at once from any thread (heartbeats), never interleaved
        with other lines."""

    @abstractmethod
    def close(self) -> None:
        """Stop reading and writing; lines written after this are dropped."""


class LockedChannel(BatchingWriter, MasterChannel):
    """A child's channel whose writes are whole, blocking and locked, so that the
    heartbeat thread can write a line at any moment without interleaving (STREAM-4).

    ``write`` batches as :class:`BatchingWriter` does, the subclass calling
    :meth:`heard` for each read: the answers of one read (which the session gathers
    into one write) leave without a loop pass of their own. Lines written before
    :meth:`start` (which calls :meth:`_begin`) are dropped: there is no master to reach
    yet. Subclasses provide ``_write_all``; an ``OSError`` there means the master is
    gone, and the channel then drops what it is given (end of input will stop the child).
    """

    def __init__(self) -> None:
        # BatchingWriter's state, but for the loop, which is the child's, known at start.
        self._pending: list[bytes] = []
        self._room = EARLY_BYTES
        self._scheduled = False
        self._wrote = False
        self._started = False
        self._lock = threading.Lock()
        self._closed = False

    def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write from now on, batching on ``loop`` (called by ``start``)."""
        self._loop = loop
        self._started = True

    def write(self, data: bytes) -> None:
        if self._started:
            BatchingWriter.write(self, data)

    def write_now(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._write_all(memoryview(data))
            except OSError:
                self._closed = True

    _send = write_now  # not a method calling it: a call less per write

    @abstractmethod
    def _write_all(self, view: memoryview) -> None:
        """Write every byte of ``view`` (called with the lock held)."""
