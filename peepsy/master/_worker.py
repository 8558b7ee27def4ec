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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from pydantic import MISSING

from peepsy._errors import InvalidResponse, RemoteProtocolError
from peepsy.master._badlines import BadLineLog
from peepsy.master._events import Emitter, ErrorEvent, RecoveredEvent, StalledEvent
from peepsy.master._stats import ProcessStatus
from peepsy.master._stuck import CancelWatch, OnStuck
from peepsy.protocol import (
    Event,
    HeartbeatReceived,
    ReadyReceived,
    UnmatchedResponse,
)
from peepsy.session import Call, Session
from peepsy.session._deadlines import clock_of
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
    "failed": frozenset({"stopped", "restarting"}),  # restarting: re-armed
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


@dataclass(frozen=True, slots=True)
class WorkerHooks:
    """Whom a worker tells what, and the graces it keeps (seconds)."""

    on_exit: Callable[[Worker, int | None], None]
    """Its process ended."""
    on_change: Callable[[Worker], None]
    """Its status, readiness or place in the rotation changed."""
    on_broken: Callable[[Worker, str], None]
    """Its channel broke while its process may still run."""
    on_stuck: Callable[[Worker, str, str], None]
    """A handler (request id, action) still runs ``cancel_grace`` after its CANCEL."""
    stall_grace: float
    startup_grace: float
    cancel_grace: float
    judge_uncancellable: bool = False
    """Judge a child that cannot be sent CANCEL (1.0) from its timeouts too."""


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
        hooks: WorkerHooks,
        max_line_bytes: int | None = None,
        on_stuck: OnStuck | None = None,
        judge_uncancellable: bool | None = None,
    ) -> None:
        self.target = target
        #: Judged stuck even without CANCEL (None: the master's choice).
        self.judge_uncancellable = (
            hooks.judge_uncancellable if judge_uncancellable is None else judge_uncancellable
        )
        #: The line limit on this channel, both ways (None: the master's).
        self.max_line_bytes = max_line_bytes
        self.spec = spec
        self.mode = mode
        self.group = group
        self.auto_restart = auto_restart
        self.legacy = legacy
        self._emitter = emitter
        self._hooks = hooks
        self._status: ProcessStatus = "starting"
        #: It may be sent a request by name (not while it is being stopped). Kept with
        #: the status by :meth:`move`, not computed: the router reads it per request.
        self.accepts = self._status in ACCEPTING
        #: A group may pick it: running, healthy, ready, not stalled, not held as stuck.
        #: Kept by :meth:`_rotate`, not computed: least-busy reads it for every member.
        self.available = False
        self._loop_time: Callable[[], float] = time.monotonic  # the loop's clock, once known
        self.session: Session | None = None
        #: The current session's table of requests in flight, read-only (least-busy).
        self.pending: Mapping[str, object] = MappingProxyType({})
        self.transport: ChildTransport | None = None
        self.stop_requested = False
        #: Its own stuck-worker policy (None: its group's, else the master's).
        self.on_stuck = on_stuck
        #: Its process is being stopped to be replaced (status ``restarting`` meanwhile).
        self.replacing = False
        self.replacements = 0
        self.cancels = CancelWatch(hooks.cancel_grace, self._judge_stuck)
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
        self.failed_early = 0  # failed when its channel broke, told with its exit
        self.actions: tuple[str, ...] | None = None
        #: The concurrency cap its READY stated (None: none stated).
        self.stated_concurrency: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_partial = b""
        # rotation (issue 10): readiness after a restart, and stalls
        self.ready = True
        self.stalled = False
        self.reported_active: int | None = None
        self._ready_timer: asyncio.TimerHandle | None = None
        self._overdue: tuple[str, float] | None = None  # (action, deadline) of a timed-out call
        self._stall_timer: asyncio.TimerHandle | None = None
        self._bad_lines = BadLineLog(target)

    # --- state --------------------------------------------------------------------------

    @property
    def status(self) -> ProcessStatus:
        return self._status

    def move(self, to: ProcessStatus) -> None:
        if to not in TRANSITIONS[self._status]:
            raise IllegalTransition(f"{self.target}: {self._status} -> {to} is not a transition")
        self._status = to
        self.accepts = to in ACCEPTING
        self._rotate()
        self._hooks.on_change(self)

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self._status in LIVE

    def _rotate(self) -> None:
        """Recompute :attr:`available`; called wherever one of its parts changes."""
        self.available = (
            self._status == "running" and self.ready and not self.stalled and not self.cancels.held
        )

    @property
    def may_come(self) -> bool:
        """Not available now, but may become so without anyone's action."""
        return self._status in ("starting", "restarting") or (
            self._status in ACCEPTING and not self.available
        )

    @property
    def in_flight(self) -> int:
        """Requests sent to the current process and not yet settled."""
        session = self.session
        return 0 if session is None else session.conn.outstanding

    def begin(self, session: Session, *, restart: bool) -> None:
        """A new process is being started; ``session`` hears it from its first byte. A
        restarted one is not ready until it speaks or its start-up grace ends."""
        self.session = session
        self.pending = session.conn.pending
        self.transport = None
        self.last_heartbeat = None
        self.reported_active = None
        self._loop_time = clock_of(asyncio.get_running_loop())
        self._end_stall("exited")  # (told at its exit already: a no-op but for safety)
        self.replacing = False
        self._cancel_ready_timer()
        self.ready = not restart
        self._rotate()
        self.stated_concurrency = None  # until this process's READY says

    def attach(self, transport: ChildTransport) -> None:
        """The new process is up."""
        self.transport = transport
        if self.session is not None:
            self.session.bind(transport.write)
        if not self.ready:
            # READY-3: a child need not speak, so silence ends with the grace.
            self._ready_timer = asyncio.get_running_loop().call_later(
                self._hooks.startup_grace, self._become_ready
            )
        self.move("running")  # the process is up; it owes us no message to prove it

    def _become_ready(self) -> None:
        self._cancel_ready_timer()
        self.ready = True
        self._rotate()
        self._hooks.on_change(self)

    def _cancel_ready_timer(self) -> None:
        if self._ready_timer is not None:
            self._ready_timer.cancel()
            self._ready_timer = None

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

    def channel_broken(self, reason: str) -> None:
        self._hooks.on_broken(self, reason)

    def process_exited(self, returncode: int | None) -> None:
        self._cancel_ready_timer()
        self._end_stall("exited")  # the request it held is failed with the process
        self._hooks.on_exit(self, returncode)

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
        if self._overdue is not None:
            self._end_stall("answered")

    def timed_out(self, call: Call[Any]) -> None:
        self.errors += 1
        self.timeouts += 1
        session = self.session
        if (
            self.judge_uncancellable
            and self.accepts
            and session is not None
            and not session.conn.peer_cancels
        ):
            # Configured to: a child that cannot be told has the same grace from the
            # timeout as one told by CANCEL, and is judged the same at its end.
            self.cancels.start(call.id, call.action)
        if self._overdue is None:
            # Still holding it after the grace (no answer of any kind): a stall.
            self._overdue = (call.action, call.deadline)
            self._stall_timer = asyncio.get_running_loop().call_later(
                self._hooks.stall_grace, self._stall
            )

    def cancel_sent(self, call: Call[Any], reason: str) -> None:
        self.cancels.sent += 1
        # At a shutdown's deadline the stop escalates anyway: nothing to judge.
        if reason != "shutdown" and self.accepts:
            self.cancels.start(call.id, call.action)

    def cancel_acknowledged(self, request_id: str, status: int) -> None:
        released = self.cancels.answered(request_id)
        if released or self._overdue is not None:
            self._end_stall("answered", released=released)

    def _judge_stuck(self, request_id: str, action: str) -> None:
        if self.accepts and not self.stop_requested:
            self.cancels.stuck += 1
            self._hooks.on_stuck(self, request_id, action)

    def take_out(self, request_id: str) -> None:
        """Rotate-out: out of its group's rotation until ``request_id`` is answered."""
        first = self.cancels.hold(request_id)
        self._rotate()
        if first and not self.stalled:
            self._hooks.on_change(self)

    def _stall(self) -> None:
        self._stall_timer = None
        if self._overdue is None or self.stalled:  # pragma: no cover - timer cancelled
            return
        action, deadline = self._overdue
        overdue_for = int((self._loop_time() - deadline) * 1000)
        self.stalled = True
        self._rotate()
        log.warning(
            "%s holds %r %d ms past its deadline; out of rotation until it answers",
            self.target,
            action,
            overdue_for,
        )
        self._emitter.emit("stalled", StalledEvent(self.target, action, overdue_for))
        self._hooks.on_change(self)

    def _end_stall(self, reason: Literal["answered", "exited"], *, released: bool = False) -> None:
        """It answered (a request held as stuck may still keep it out; ``released``:
        the last one just was), or its process (and the requests it held) is gone."""
        out = released or self.stalled or bool(self.cancels.held)
        self._overdue = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self.stalled = False
        if reason == "exited":
            self.cancels.clear()
        self._rotate()
        if out and not self.cancels.held:
            log.info("%s is back in rotation (%s)", self.target, reason)
            self._emitter.emit("recovered", RecoveredEvent(self.target, reason))
            self._hooks.on_change(self)

    def rejected(self, error: RemoteProtocolError) -> None:
        self.rejected_lines += 1
        if isinstance(error, InvalidResponse):
            self.errors += 1
        self._bad_lines.warn(self._loop_time(), error)
        self._emitter.emit("error", ErrorEvent(self.target, error))

    def late(self, event: UnmatchedResponse) -> None:
        self.late_responses += 1
        if self.cancels.answered(event.response.id, told=False):
            self._end_stall("answered", released=True)
            return
        log.debug("%s: dropped a late answer to %s", self.target, event.response.id)
        if self._overdue is not None:
            self._end_stall("answered")

    def lifecycle(self, event: Event) -> None:
        if isinstance(event, HeartbeatReceived):
            self.last_heartbeat = asyncio.get_running_loop().time()
            self.last_heartbeat_wall = _now_ms()
            active = event.message.requests_active
            self.reported_active = None if active is MISSING else active
            if self._status == "unhealthy":
                self.move("running")
            if not self.ready:
                self._become_ready()
        elif isinstance(event, ReadyReceived):
            actions = event.message.actions
            self.actions = None if actions is MISSING else tuple(actions)
            cap = event.message.max_concurrency
            self.stated_concurrency = None if cap is MISSING else cap
            if not self.ready:
                self._become_ready()
        # The core rejects INIT and SHUTDOWN from a child (MSG-6); the end of its
        # stream is followed by its exit, which the supervisor handles.
