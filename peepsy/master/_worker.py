"""One child as the master sees it, across restarts: its state, its session, its stats.

A worker's status moves only along :data:`TRANSITIONS`; any other move is a bug and
raises :class:`IllegalTransition` instead of overwriting the status. Each process the
worker runs gets a fresh :class:`~peepsy.session.Session`, so an answer meant for the
previous process can never be written to the next one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from pydantic import MISSING

from peepsy._errors import InvalidResponse, RemoteProtocolError
from peepsy.master._events import Emitter, ErrorEvent
from peepsy.master._stats import ProcessStats, ProcessStatus
from peepsy.protocol import (
    Event,
    HeartbeatReceived,
    ReadyReceived,
    UnmatchedResponse,
)
from peepsy.session import Call, Session
from peepsy.transport import ChildTransport, SpawnSpec

#: Every move a worker's status may make. ``starting`` is a process being spawned;
#: ``restarting`` is waiting to be spawned again; ``stopped`` and ``failed`` have no
#: process (``failed``: it could not start, or restarted too often).
TRANSITIONS: Final[dict[ProcessStatus, frozenset[ProcessStatus]]] = {
    "starting": frozenset({"running", "failed", "restarting", "stopped"}),
    "running": frozenset({"unhealthy", "stopping", "restarting", "stopped", "failed"}),
    "unhealthy": frozenset({"running", "stopping", "restarting", "stopped", "failed"}),
    "restarting": frozenset({"starting", "stopped", "failed"}),
    "stopping": frozenset({"stopped"}),
    "stopped": frozenset(),
    "failed": frozenset({"stopped"}),
}
#: Statuses with a process (set on spawn, cleared when it exits).
LIVE: Final = frozenset({"running", "unhealthy", "stopping"})
ACCEPTING: Final = frozenset({"running", "unhealthy"})
EMA_ALPHA: Final = 0.2
STDERR_LINES: Final = 200

log = logging.getLogger("peepsy.master")


class IllegalTransition(RuntimeError):
    """A worker's status was asked to make a move :data:`TRANSITIONS` does not allow."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class Worker:
    """Everything the master knows about one child target."""

    def __init__(
        self,
        target: str,
        spec: SpawnSpec,
        mode: str,
        group: str | None,
        *,
        auto_restart: bool,
        legacy: bool,
        emitter: Emitter,
        on_exit: Callable[[Worker, int | None], None],
    ) -> None:
        self.target = target
        self.spec = spec
        self.mode = mode
        self.group = group
        self.auto_restart = auto_restart
        self.legacy = legacy
        self._emitter = emitter
        self._on_exit = on_exit
        self._status: ProcessStatus = "starting"
        self._loop_time: Callable[[], float] = time.monotonic  # the loop's clock, once known
        self.session: Session | None = None
        self.transport: ChildTransport | None = None
        self.stop_requested = False
        # stats
        self.requests_handled = 0
        self.errors = 0
        self.timeouts = 0
        self.avg_response = 0.0
        self.last_activity: int | None = None
        self.last_heartbeat: float | None = None  # loop time, for health (HB-2)
        self.last_heartbeat_wall: int | None = None
        self.restarts = 0
        self.rejected_lines = 0
        self.late_responses = 0
        self.actions: tuple[str, ...] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_partial = b""

    # --- state --------------------------------------------------------------------------

    @property
    def status(self) -> ProcessStatus:
        return self._status

    def move(self, to: ProcessStatus) -> None:
        if to not in TRANSITIONS[self._status]:
            raise IllegalTransition(f"{self.target}: {self._status} -> {to} is not a transition")
        self._status = to

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self._status in LIVE

    @property
    def accepts(self) -> bool:
        """It may be sent a request by name (not while it is being stopped)."""
        return self._status in ACCEPTING

    @property
    def available(self) -> bool:
        """A group may pick it: running and healthy."""
        return self._status == "running"

    @property
    def in_flight(self) -> int:
        """Requests sent to the current process and not yet settled."""
        session = self.session
        return 0 if session is None else session.conn.outstanding

    def begin(self, session: Session) -> None:
        """A new process is being started; ``session`` hears it from its first byte."""
        self.session = session
        self.transport = None
        self.last_heartbeat = None
        self._loop_time = asyncio.get_running_loop().time

    def attach(self, transport: ChildTransport) -> None:
        """The new process is up."""
        self.transport = transport
        if self.session is not None:
            self.session.bind(transport.write)
        self.move("running")  # the process is up; it owes us no message to prove it

    # --- the transport's listener -------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_activity = _now_ms()
        session = self.session
        if session is not None:
            session.receive(data)

    def stderr_received(self, data: bytes) -> None:
        mode = self.spec.stderr
        data = self._stderr_partial + data
        *lines, self._stderr_partial = data.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            if mode == "log":
                logging.getLogger(f"peepsy.stderr.{self.target}").info("%s", text)
            self.stderr_tail.append(text)

    def eof_received(self) -> None:
        if self.session is not None:
            self.session.end()

    def process_exited(self, returncode: int | None) -> None:
        self._on_exit(self, returncode)

    # --- the session's listener ---------------------------------------------------------

    def answered(self, call: Call[Any], status: int) -> None:
        elapsed = (self._loop_time() - call.started) * 1000
        if self.requests_handled:
            self.avg_response += EMA_ALPHA * (elapsed - self.avg_response)
        else:
            self.avg_response = elapsed
        self.requests_handled += 1
        if status >= 400:
            self.errors += 1

    def timed_out(self, call: Call[Any]) -> None:
        self.errors += 1
        self.timeouts += 1

    def rejected(self, error: RemoteProtocolError) -> None:
        self.rejected_lines += 1
        if isinstance(error, InvalidResponse):
            self.errors += 1
        log.warning("%s sent a bad line: %s", self.target, error)
        self._emitter.emit("error", ErrorEvent(self.target, error))

    def late(self, event: UnmatchedResponse) -> None:
        self.late_responses += 1
        log.debug("%s: dropped a late answer to %s", self.target, event.response.id)

    def lifecycle(self, event: Event) -> None:
        if isinstance(event, HeartbeatReceived):
            self.last_heartbeat = asyncio.get_running_loop().time()
            self.last_heartbeat_wall = _now_ms()
            if self._status == "unhealthy":
                self.move("running")
        elif isinstance(event, ReadyReceived):
            actions = event.message.actions
            self.actions = None if actions is MISSING else tuple(actions)
        # The core rejects INIT and SHUTDOWN from a child (MSG-6); the end of its
        # stream is followed by its exit, which the supervisor handles.

    # --- stats --------------------------------------------------------------------------

    def snapshot(self) -> ProcessStats:
        transport = self.transport
        return ProcessStats(
            target=self.target,
            group=self.group,
            mode=self.mode,
            pid=transport.pid if transport is not None else None,
            status=self._status,
            requests_handled=self.requests_handled,
            requests_active=self.in_flight,
            average_response_time=round(self.avg_response, 3),
            last_activity=self.last_activity,
            errors=self.errors,
            timeouts=self.timeouts,
            last_heartbeat_at=self.last_heartbeat_wall,
            restarts=self.restarts,
            rejected_lines=self.rejected_lines,
            late_responses=self.late_responses,
            actions=self.actions,
        )
