"""A worker under test, seen byte for byte: what goes in, what comes out, and when."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Lines longer than this from a worker are cut short in the trace (not in the checks).
_TRACE_LIMIT = 2000
#: Seconds a worker gets to exit after its input closed, before its group is killed:
#: STREAM-3's 1000 ms, and slack for a busy machine.
STOP_GRACE = 1.5


@dataclass(slots=True)
class WireLine:
    """One line that crossed the pipe. ``t`` is ms since the worker started."""

    t: float
    direction: str  # "to-worker" or "from-worker"
    raw: bytes
    message: Any = None
    problem: str | None = None

    def render(self) -> str:
        arrow = "->" if self.direction == "to-worker" else "<-"
        text = self.raw.decode("utf-8", "replace")
        if len(text) > _TRACE_LIMIT:
            text = text[:_TRACE_LIMIT] + f"... ({len(self.raw)} bytes)"
        note = f"   !! {self.problem}" if self.problem else ""
        return f"{self.t:9.1f} ms {arrow} {text}{note}"


@dataclass(slots=True, eq=False)  # compared and hashed by identity: kept in sets
class Session:
    """One run of the worker command, with everything it wrote."""

    argv: Sequence[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    trace: list[WireLine] = field(default_factory=list)
    stderr: bytearray = field(default_factory=bytearray)
    messages: asyncio.Queue[WireLine] = field(default_factory=asyncio.Queue)
    heartbeats: list[WireLine] = field(default_factory=list)
    ready: list[WireLine] = field(default_factory=list)
    #: Whether the worker has written anything yet (then it has started).
    heard: bool = False
    #: When it first wrote (ms, as :meth:`now`): where its start-up ends.
    heard_at: float = 0.0
    #: Set at the first READY, or when the output closes (no READY can come then).
    ready_seen: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set at each HEARTBEAT (and when the output closes): waiters clear it, then wait.
    heartbeat_seen: asyncio.Event = field(default_factory=asyncio.Event)
    output_closed: bool = False
    partial: bytes = b""
    transport: str = "stdio"
    _proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _start: float = 0.0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self._start = time.monotonic()
        if self.transport == "node-ipc":
            await self._start_node_ipc()
            return
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            limit=_LIMIT,
        )
        self._reader, self._writer = self._proc.stdout, self._proc.stdin
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_logs(self._proc.stderr)),
        ]

    async def _start_node_ipc(self) -> None:
        """The worker gets Node's IPC channel (NODE_CHANNEL_FD), as child_process.fork
        gives it; its stdout and stderr are then both logs."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(self.env if self.env is not None else os.environ)
        env.update(NODE_CHANNEL_FD=str(theirs.fileno()), NODE_CHANNEL_SERIALIZATION_MODE="json")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours, limit=_LIMIT)
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_logs(self._proc.stdout)),
            asyncio.create_task(self._read_logs(self._proc.stderr)),
        ]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def now(self) -> float:
        return (time.monotonic() - self._start) * 1000

    async def _read_stdout(self) -> None:
        """The protocol stream: the worker's stdout, or the Node IPC channel."""
        assert self._reader is not None
        stream = self._reader
        while True:
            try:
                raw = await stream.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                self.partial = exc.partial
                self.output_closed = True
                self.ready_seen.set()
                self.heartbeat_seen.set()
                self.messages.put_nowait(_CLOSED)
                return
            except asyncio.LimitOverrunError:
                raw = await stream.read(64 * 1024 * 1024)
            line = WireLine(self.now(), "from-worker", raw)
            self._classify(line)
            self.trace.append(line)
            if not self.heard:
                self.heard, self.heard_at = True, line.t
            kind = line.message.get("type") if isinstance(line.message, dict) else None
            # HEARTBEAT and READY come whenever the worker likes (HB-1, READY-1): steps do
            # not see them; the suite still validates every one.
            if kind == "HEARTBEAT":
                self.heartbeats.append(line)
                self.heartbeat_seen.set()
            elif kind == "READY":
                self.ready.append(line)
                self.ready_seen.set()
            else:
                self.messages.put_nowait(line)

    def _classify(self, line: WireLine) -> None:
        body = line.raw[:-1] if line.raw.endswith(b"\n") else line.raw
        if body.endswith(b"\r"):
            line.problem = "line ends with CR LF (FRAME-4)"
        if body.startswith(b"\xef\xbb\xbf"):
            line.problem = "line starts with a byte-order mark (FRAME-7)"
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError) as exc:
            line.problem = line.problem or f"not a JSON line: {exc}"
            return
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            line.problem = line.problem or "not a protocol message (an object with a type)"
        line.message = value

    async def _read_logs(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        while chunk := await stream.read(65536):
            if len(self.stderr) < 1 << 20:
                self.stderr += chunk

    def send(self, message: Any) -> None:
        self.send_raw(
            json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        )

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self.trace.append(WireLine(self.now(), "to-worker", data))
        if not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        assert self._writer is not None
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def close_stdin(self) -> None:
        """End the worker's input: close its stdin, or disconnect the Node channel."""
        assert self._writer is not None
        self.trace.append(WireLine(self.now(), "to-worker", b"(end of input)\n"))
        self._writer.close()

    async def next_message(self, timeout_ms: float) -> WireLine | None:
        """The next message (heartbeats and READY aside), or None when none comes in
        time or the worker has closed its output (then without waiting)."""
        try:
            line = await asyncio.wait_for(self.messages.get(), max(timeout_ms, 0) / 1000)
        except TimeoutError:
            return None
        if line is _CLOSED:
            self.messages.put_nowait(_CLOSED)  # for whoever asks next
            return None
        return line

    async def wait_exit(self, timeout_ms: float) -> int | None:
        assert self._proc is not None
        try:
            code = await asyncio.wait_for(self._proc.wait(), timeout_ms / 1000)
        except TimeoutError:
            return None
        # Let the readers take in what the worker wrote before it exited.
        await asyncio.wait(self._tasks, timeout=1.0)
        return code

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def exit_text(self) -> str:
        """How the worker ended, in words: ``exited with status 3``, ``was killed by
        signal SIGSEGV (11)``, or ``is still running``."""
        return describe_exit(self.returncode)

    def stderr_tail(self, lines: int = 10) -> list[str]:
        """The last lines of what the worker wrote to its stderr (its logs)."""
        return self.stderr.decode("utf-8", "replace").strip().splitlines()[-lines:]

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (it was started in a session of its
        own), so that no grandchild outlives the run. Safe to call at any time."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """End the worker however it is: close its input, give it ``grace`` seconds to
        exit by itself (a worker on EOF exits within 1000 ms, STREAM-3), then kill its
        process group. Waits on the exit itself, never a fixed time."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            if self._writer is not None and not self._writer.is_closing():
                self._writer.close()
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                self.kill()
                await proc.wait()
        # A grandchild of the worker may still hold its pipes open: end the group too.
        self.kill()
        # With the group gone its pipes end: let the readers take the rest and finish
        # (an event, not a fixed wait); cancel only those held open from outside it.
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
        # Close the process transport now, in the loop: left to the garbage collector it
        # would close after the loop has (after a SIGINT, say) and print a traceback.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal"
        return f"was killed by signal {name} ({-code})"
    return f"exited with status {code}"


_CLOSED = WireLine(0.0, "from-worker", b"")
_LIMIT = 64 * 1024 * 1024


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
