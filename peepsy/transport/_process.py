"""Children as operating-system processes speaking on their stdin and stdout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Mapping
from typing import Final, Protocol

from peepsy.transport._base import ChildTransport, Launcher, SpawnSpec, TransportListener
from peepsy.transport._pipes import PipeSizer, holds_long_line

#: How long to wait, after a child exits, for its stdout to reach end of file (a
#: grandchild may hold it open) before the exit is reported anyway.
DRAIN_GRACE_S: Final = 2.0
#: How long after its protocol stream ends a child may take to exit before the stream's
#: end is reported as a broken channel (a child that exits closes the stream first, and
#: the loop may learn of the exit a little later).
EXIT_GRACE_S: Final = 0.5

log = logging.getLogger("peepsy.transport")


class _Releasable(Protocol):
    @property
    def returncode(self) -> int | None: ...
    def release(self) -> None: ...


class ExitWatch(asyncio.SubprocessProtocol):
    """Reports a child's end once both its process has exited and its protocol stream
    has reached end of file, so that no line it wrote before exiting is lost; after
    ``DRAIN_GRACE_S`` without EOF (a grandchild holding the stream) it reports anyway."""

    def __init__(self, listener: TransportListener) -> None:
        self.listener = listener
        self.transport: _Releasable | None = None
        self.closed = False
        self.exited = False
        self.reported = False
        self.broken = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._grace: asyncio.TimerHandle | None = None
        self._alive_check: asyncio.TimerHandle | None = None
        #: The transport's writer, told of each read of the protocol stream (see
        #: BatchingWriter.heard); set by the transport.
        self.writer: ChildTransport | None = None

    def channel_closed(self) -> None:
        """The protocol stream reached end of file."""
        if not self.closed:
            self.closed = True
            self.listener.eof_received()
            if self.exited:
                self._report()
            else:
                self._alive_check = asyncio.get_running_loop().call_later(
                    EXIT_GRACE_S, self.channel_lost, "closed its protocol stream"
                )

    def channel_lost(self, reason: str) -> None:
        """The child can no longer be heard or written to, and has not exited: told
        once, so that the master stops it (its exit is reported as usual)."""
        self._alive_check = None
        if not self.exited and not self.broken:
            self.broken = True
            self.listener.channel_broken(reason)

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
        if self._alive_check is not None:
            self._alive_check.cancel()
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


class _StdioWatch(ExitWatch):
    """The protocol on stdout (fd 1); stderr (fd 2) is logs."""

    #: Set once the transport exists: one line this long coming means large traffic.
    pipes: PipeSizer | None = None
    #: Bytes read since the last newline: the unfinished line's length so far.
    unfinished = 0

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            pipes = self.pipes
            if pipes is not None:
                # Reads are smaller than a pipe: a long line is known by how much of it
                # has come, over however many reads.
                last = data.rfind(b"\n")
                unfinished = self.unfinished + len(data) if last < 0 else len(data) - last - 1
                self.unfinished = unfinished
                if unfinished >= pipes.threshold:
                    pipes.widen()
            writer = self.writer
            if writer is not None:
                writer.heard()
            self.listener.data_received(data)
        else:
            self.listener.stderr_received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.channel_closed()
        elif fd == 0 and exc is not None:  # a write failed (EPIPE: it closed its stdin)
            self.channel_lost(f"refused a write to its stdin ({exc})")


class _ReadsAtOnce(asyncio.Protocol):
    """Put in front of asyncio's protocol on a child's stdout, so that each read reaches
    the watch at once: asyncio hands a subprocess's reads on with ``call_soon``, one
    loop pass later. That pass cost 3 to 4 us of the master's CPU per request at one
    request in flight (docs/performance.md). End of file and the pipe's loss still go
    through asyncio's protocol, which tracks them for the process's exit; they follow
    every read, as before."""

    __slots__ = ("_inner", "_watch")

    def __init__(self, inner: asyncio.Protocol, watch: _StdioWatch) -> None:
        self._inner = inner
        self._watch = watch

    def data_received(self, data: bytes) -> None:
        self._watch.pipe_data_received(1, data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)


class SubprocessChildTransport(ChildTransport):
    """A child that is an OS process watched by an :class:`ExitWatch`; subclasses say
    where its protocol stream is."""

    __slots__ = ("_proc", "_watch")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: asyncio.SubprocessTransport, watch: ExitWatch
    ) -> None:
        super().__init__(loop)
        self._proc = proc
        self._watch = watch
        watch.writer = self

    @property
    def pid(self) -> int | None:
        return self._proc.get_pid()

    @property
    def returncode(self) -> int | None:
        return self._proc.get_returncode()

    def terminate(self) -> None:
        if self._proc.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):  # exited in between
                self._proc.terminate()

    def kill(self) -> None:
        if self._proc.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def wait(self) -> int | None:
        await asyncio.shield(self._watch.done)
        return self._proc.get_returncode()


class ProcessTransport(SubprocessChildTransport):
    """The protocol on the child's stdin and stdout."""

    __slots__ = ("_pipes", "_stdin")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: asyncio.SubprocessTransport, watch: ExitWatch
    ) -> None:
        super().__init__(loop, proc, watch)
        stdin = proc.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        self._stdin: asyncio.WriteTransport | None = stdin
        stdout = proc.get_pipe_transport(1)
        if isinstance(watch, _StdioWatch) and isinstance(stdout, asyncio.ReadTransport):
            inner = stdout.get_protocol()
            if isinstance(inner, asyncio.Protocol):
                stdout.set_protocol(_ReadsAtOnce(inner, watch))
        self._pipes = PipeSizer(stdin, stdout, reader=stdout) if stdout is not None else PipeSizer()
        if isinstance(watch, _StdioWatch):
            watch.pipes = self._pipes

    def _send(self, data: bytes) -> None:
        stdin = self._stdin
        if stdin is not None and not stdin.is_closing():
            pipes = self._pipes
            if len(data) >= pipes.threshold and holds_long_line(data, pipes.threshold):
                pipes.widen()
            elif pipes.wide:
                pipes.settle()
            stdin.write(data)
        else:  # never dropped silently: the requests it carried fail at once
            self._watch.channel_lost("has its stdin closed")

    def close_input(self) -> None:
        self.flush()
        if self._stdin is not None:
            self._stdin.close()
            self._stdin = None

    def release(self) -> None:
        """Close asyncio's transport once the process has exited and been drained."""
        self._stdin = None
        self._proc.close()


class ProcessLauncher(Launcher):
    """Runs each child as a process; its stdin and stdout carry the protocol."""

    async def spawn(self, spec: SpawnSpec, listener: TransportListener) -> ChildTransport:
        if spec.transport == "node-ipc":
            from peepsy.transport._node_ipc import spawn_node_ipc  # noqa: PLC0415 - cycle

            return await spawn_node_ipc(spec, listener)
        loop = asyncio.get_running_loop()
        stderr = (
            None
            if spec.stderr == "inherit"
            else (subprocess.DEVNULL if spec.stderr == "discard" else subprocess.PIPE)
        )
        env = child_env(spec.env, spec.inherit_env)
        protocol = _StdioWatch(listener)
        proc, _ = await loop.subprocess_exec(
            lambda: protocol,
            *spec.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=spec.cwd,
            # A child does not get the master's terminal signals (Ctrl-C goes to the
            # master, which then shuts its children down in order).
            start_new_session=True,
        )
        transport = ProcessTransport(loop, proc, protocol)
        protocol.transport = transport
        log.debug("spawned %s as pid %s", list(spec.argv), transport.pid)
        return transport


def child_env(env: Mapping[str, str] | None, inherit: bool) -> dict[str, str] | None:
    """The environment a child starts with: the master's (when ``inherit``) with ``env``
    on top; None means the master's, unchanged."""
    if inherit and not env:
        return None
    merged = dict(os.environ) if inherit else {}
    merged.update(env or {})
    return merged
