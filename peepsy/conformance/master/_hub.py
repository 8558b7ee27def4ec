"""The suite's end of the stub children: a Unix socket server in a private folder, one
:class:`Channel` per stub that connects (one incarnation of one child), each recording
what it saw in a :class:`ChannelRecord` as it happens, on the suite's clock.

The player waits on a channel's record with deadlines (:meth:`Channel.wait`); the wire
checks read the records after the case.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peepsy.conformance._schemas import schema_errors
from peepsy.conformance.master._record import ChannelRecord, Event, EventKind

#: The stub, run by path so that it needs no PYTHONPATH (``-I``: no site, no env).
STUB_PATH = Path(__file__).with_name("_stub.py")


def stub_argv(socket_path: str, name: str) -> list[str]:
    return [sys.executable, "-I", str(STUB_PATH), socket_path, name]


class Channel:
    """One stub connection: its record, and the commands the suite sends it."""

    def __init__(self, record: ChannelRecord, writer: asyncio.StreamWriter) -> None:
        self.record = record
        self._writer = writer
        self._pending = b""
        #: Schema problems of the master's lines, by their index in the record's events.
        self.problems: dict[int, list[str]] = {}
        self._changed = asyncio.Event()
        self._acks = 0
        self._asked = 0
        #: The stub said goodbye (an exit on our word, or death by a signal it caught).
        self.gone = False
        #: The connection closed (with or without a goodbye).
        self.closed = False

    def _add(self, kind: EventKind, data: bytes = b"", value: int | None = None) -> None:
        message: dict[str, Any] | None = None
        if kind == "line":
            message = _parse(data)
            if message is not None:
                # Validated as it arrives: a step that fails can say why the line is bad.
                problems = schema_errors("master-message.json", message)
                if problems:
                    self.problems[len(self.record.events)] = problems
        self.record.events.append(Event(kind, time.monotonic(), data, value, message))
        self._changed.set()
        self._changed = asyncio.Event()

    def _stdin(self, data: bytes) -> None:
        self._pending += data
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            self._add("line", line + b"\n")

    def _eof(self) -> None:
        if self._pending:
            self._add("partial", self._pending)
            self._pending = b""
        self._add("eof")

    def _frame(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "in":
            self._stdin(base64.b64decode(frame["b"]))
        elif op == "eof":
            self._eof()
        elif op == "signal":
            self._add("signal", value=int(frame["signum"]))
        elif op == "ack":
            self._acks += 1
            self._changed.set()
            self._changed = asyncio.Event()
        elif op == "bye":
            self.gone = True
            code = frame.get("code")
            self._add("exit", value=int(code) if code is not None else -int(frame["signum"]))

    def _lost(self) -> None:
        self.closed = True
        if not self.gone:
            self._add("killed")
        else:
            self._changed.set()

    # -- what the suite makes the child do -------------------------------------------

    def _send(self, **frame: Any) -> None:
        if self.closed:
            return
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write((json.dumps(frame) + "\n").encode())

    def write_stdout(self, data: bytes) -> None:
        self._send(op="out", b=base64.b64encode(data).decode())
        self.record.events.append(Event("sent", time.monotonic(), data))

    def write_stderr(self, data: bytes) -> None:
        self._send(op="err", b=base64.b64encode(data).decode())

    def exit(self, code: int) -> None:
        self._send(op="exit", code=code)

    async def ignore_sigterm(self, deadline: float, on: bool = True) -> bool:
        """Whether the stub confirmed it before ``deadline``: only then can a case send
        the SIGTERM it must ignore without a race."""
        self._send(op="ignore_sigterm", on=on)
        return await self._acked(deadline)

    async def close_stdout(self, deadline: float) -> bool:
        self._send(op="close_stdout")
        return await self._acked(deadline)

    async def _acked(self, deadline: float) -> bool:
        self._asked += 1
        asked = self._asked
        return bool(await self.wait(lambda: self._acks >= asked or self.closed, deadline))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.record.pid, signal.SIGKILL)

    @property
    def ended(self) -> bool:
        """Whether the child is dead (or its stub gone)."""
        return self.closed

    async def wait(self, found: Callable[[], Any], deadline: float) -> Any:
        """``found()`` once it is truthy, re-checked at every event; None at ``deadline``
        (the suite's monotonic clock)."""
        while True:
            result = found()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Hub:
    """The socket every stub of one case connects to. ``records`` has every incarnation
    in the order they connected; ``channels[name]`` the incarnations of one child.
    ``case`` names the records. With ``observe``, every connection is its own child
    (``NAME-1``, ``NAME-2``...): an application may spawn the same argv many times."""

    def __init__(self, folder: Path, case: str, observe: bool = False) -> None:
        self.path = str(folder / f"{abs(hash((case, id(self)))) % 10**8}.sock")
        self.case = case
        self.observe = observe
        self.records: list[ChannelRecord] = []
        self.channels: dict[str, list[Channel]] = {}
        self._server: asyncio.Server | None = None
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Called with each new channel (observe mode plays a child on it).
        self.on_channel: Callable[[Channel], None] | None = None

    def argv(self, name: str) -> list[str]:
        return stub_argv(self.path, name)

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for channels in self.channels.values():
            for channel in channels:
                channel._writer.close()  # the stub exits when its socket closes
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            hello = json.loads(await reader.readline())
            name = str(hello["name"])
            if self.observe:
                name = f"{name}-{len(self.records) + 1}"
            incarnations = self.channels.setdefault(name, [])
            record = ChannelRecord(self.case, name, len(incarnations) + 1, int(hello["pid"]))
            channel = Channel(record, writer)
            incarnations.append(channel)
            self.records.append(record)
            self._connected.set()
            self._connected = asyncio.Event()
            if self.on_channel is not None:
                self.on_channel(channel)
            try:
                while line := await reader.readline():
                    channel._frame(json.loads(line))
            except (ConnectionError, ValueError):
                pass
            channel._lost()
        except (ConnectionError, ValueError, KeyError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def incarnation(self, name: str, number: int, deadline: float) -> Channel | None:
        """The ``number``th incarnation of child ``name`` once it has connected; None at
        ``deadline``."""
        while True:
            found = self.channels.get(name, [])
            if len(found) >= number:
                return found[number - 1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), remaining)


def private_folder() -> tempfile.TemporaryDirectory[str]:
    """A folder only this user can enter (mkdtemp makes it 0700): the stubs' sockets."""
    return tempfile.TemporaryDirectory(prefix="peepsy-mc-")
