"""The reference master: spawns children, routes requests, supervises, shuts down.

Policy only. The protocol core turns messages into bytes and back; transports move the
bytes and own the processes. Fixes over Node peepsy 1.0.1 are marked with the number of
the defect in shared/reference/node-peepsy-wire-facts.md ("Node defect N").
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import random
import shlex
import signal as signal_module
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, Generic, Literal, overload

from pydantic import MISSING
from typing_extensions import TypeVar

from peepsy._actions import ActionLike, HandlerRegistry, Handlers
from peepsy._checks import check_int, check_ms
from peepsy._errors import (
    EncodeError,
    PeepsyError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    RemoteError,
    RemoteProtocolError,
)
from peepsy._failures import (
    NOT_FOUND_TEMPLATE,
    NOT_RUN_STATUSES,
    bare_payload,
    error_from_wire,
    error_to_wire,
)
from peepsy.master._deadlines import Deadlines
from peepsy.master._events import (
    AutoRestartEvent,
    Emitter,
    ErrorEvent,
    EventName,
    ExitEvent,
    HeartbeatMissedEvent,
    RestartFailedEvent,
    SpawnEvent,
)
from peepsy.master._stats import GroupStats, ProcessStats, ProcessStatus, Reply, Strategy
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    MIN_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Connection,
    ErrorPayload,
    Event,
    HeartbeatReceived,
    Init,
    InvalidResponseReceived,
    MessageRejected,
    ReadyReceived,
    RequestReceived,
    Response,
    ResponseReceived,
    Role,
    Shutdown,
    StreamEnded,
    UnmatchedResponse,
)
from peepsy.protocol._codec import printable
from peepsy.transport import (
    ChildTransport,
    Launcher,
    ProcessLauncher,
    SpawnSpec,
    StderrMode,
    TransportKind,
)

Mode = Literal["sequential", "concurrent"]
RequestShape = Literal["unified", "legacy"]
ReqT = TypeVar("ReqT", default=Any)
RespT = TypeVar("RespT", default=Any)
Req = TypeVar("Req")
Resp = TypeVar("Resp")

STRATEGIES: Final = ("round-robin", "random", "least-busy")
#: Statuses whose answer means the request never ran, so a retry cannot repeat work.
SAFE_RETRY_STATUSES: Final = NOT_RUN_STATUSES
EMA_ALPHA: Final = 0.2
_STDERR_LINES: Final = 200
_MAX_STATED_LINE_BYTES: Final = 2**53 - 1
#: Statuses of a child whose process runs (set on spawn, cleared when it exits).
# "starting" and "restarting" are neither: until the new process is up and its
# transport in place, a request would be written to nothing.
_LIVE: Final = frozenset({"running", "unhealthy", "stopping"})
_ACCEPTING: Final = frozenset({"running", "unhealthy"})
_AVAILABLE: Final = frozenset({"running"})

log = logging.getLogger("peepsy.master")


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Call:
    """One attempt of one request, in flight to one child."""

    __slots__ = (
        "action",
        "deadline",
        "future",
        "group",
        "handle",
        "id",
        "settled",
        "started",
        "timeout",
    )

    def __init__(
        self,
        handle: _ChildHandle,
        rid: str,
        action: str,
        future: asyncio.Future[Response],
        timeout: int,
        started: float,
    ) -> None:
        self.handle = handle
        self.id = rid
        self.action = action
        self.future = future
        self.timeout = timeout
        self.started = started
        self.deadline = 0.0
        self.settled = False
        self.group: _Group | None = None


class _Group:
    __slots__ = (
        "active",
        "auto_restart",
        "max_concurrency",
        "members",
        "name",
        "next_index",
        "seq",
        "strategy",
        "waiters",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[str] = []
        self.strategy: Strategy = "round-robin"
        self.max_concurrency: int | None = None
        self.auto_restart = True
        self.active = 0
        self.next_index = 0
        self.waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.seq = itertools.count()

    def has_capacity(self) -> bool:
        return self.max_concurrency is None or self.active < self.max_concurrency


class _ChildHandle:
    """Everything the master knows about one child, across restarts."""

    def __init__(
        self,
        master: Master[Any, Any],
        target: str,
        spec: SpawnSpec,
        mode: Mode,
        group: str | None,
        auto_restart: bool,
        shape: RequestShape,
    ) -> None:
        self.master = master
        self.target = target
        self.spec = spec
        self.mode = mode
        self.group = group
        self.auto_restart = auto_restart
        self.legacy = shape == "legacy"
        self.status: ProcessStatus = "starting"
        self.conn = Connection(Role.MASTER, max_line_bytes=master._max_line_bytes)
        self.transport: ChildTransport | None = None
        self.inflight: dict[str, _Call] = {}
        self.requests_handled = 0
        self.errors = 0
        self.timeouts = 0
        self.avg_response = 0.0
        self.last_activity: int | None = None
        self.last_heartbeat: float | None = None  # loop time, for health (HB-2)
        self.last_heartbeat_wall: int | None = None
        self.restarts = 0
        self.restart_times: collections.deque[float] = collections.deque()
        self.rejected_lines = 0
        self.late_responses = 0
        self.actions: tuple[str, ...] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._stderr_partial = b""
        self.stop_requested = False

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self.status in _LIVE

    @property
    def accepts(self) -> bool:
        """It may be sent a request by name (not while it is being stopped)."""
        return self.status in _ACCEPTING

    @property
    def available(self) -> bool:
        """A group may pick it: running and healthy."""
        return self.status in _AVAILABLE

    # TransportListener ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_activity = _now_ms()
        if self.status == "starting":
            self.status = "running"
        for event in self.conn.receive_data(data):
            self.master._on_event(self, event)

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
        for event in self.conn.receive_data(b""):
            if not isinstance(event, StreamEnded):
                self.master._on_event(self, event)

    def process_exited(self, returncode: int | None) -> None:
        self.master._on_exit(self, returncode)

    def snapshot(self) -> ProcessStats:
        transport = self.transport
        return ProcessStats(
            target=self.target,
            group=self.group,
            mode=self.mode,
            pid=transport.pid if transport is not None else None,
            status=self.status,
            requests_handled=self.requests_handled,
            requests_active=len(self.inflight),
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


class Master(HandlerRegistry, Generic[ReqT, RespT]):
    """Spawns and supervises children and exchanges requests with them.

    ::

        async with Master(timeout=5000) as master:
            await master.spawn_child("w1", ["python", "worker.py"])
            reply = await master.request("add", "w1", {"a": 1, "b": 2})
            print(reply.data)

    The type parameters are the data types of requests and responses for actions named
    by string (``Master[Any, Any]`` by default); :class:`~peepsy.Action` declarations type
    each action on its own. Durations are integer milliseconds, as on the wire.
    """

    def __init__(
        self,
        *,
        timeout: int = 5000,
        max_retries: int = 0,
        retry_delay: int = 1000,
        heartbeat_interval: int = 2000,
        heartbeat_miss_threshold: int = 3,
        max_restarts: int = 5,
        restart_window: int = 60_000,
        include_stack: bool = False,
        request_shape: RequestShape = "unified",
        launcher: Launcher | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        check_ms("timeout", timeout)
        check_ms("heartbeat_interval", heartbeat_interval)
        check_int("max_retries", max_retries, 0)
        check_int("retry_delay", retry_delay, 0)
        check_int("heartbeat_miss_threshold", heartbeat_miss_threshold, 1)
        check_int("max_restarts", max_restarts, 0)
        check_int("restart_window", restart_window, 1)
        if request_shape not in ("unified", "legacy"):
            raise ValueError("request_shape is 'unified' or 'legacy'")
        self._handlers = Handlers()
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._heartbeat_interval = heartbeat_interval
        self._miss_threshold = heartbeat_miss_threshold
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._include_stack = include_stack
        self._request_shape: RequestShape = request_shape
        self._launcher = launcher or ProcessLauncher()
        self._max_line_bytes = max_line_bytes
        self._children: dict[str, _ChildHandle] = {}
        self._groups: dict[str, _Group] = {}
        self._emitter = Emitter()
        self._closing = False
        self._health: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._restarts: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: Deadlines[_Call] | None = None

    def _deadlines_for(self, loop: asyncio.AbstractEventLoop) -> Deadlines[_Call]:
        deadlines = self._deadlines
        if deadlines is None:
            deadlines = self._deadlines = Deadlines(loop, self._timed_out)
        return deadlines

    async def __aenter__(self) -> Master[ReqT, RespT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.graceful_shutdown()

    # --- events ---------------------------------------------------------------------------

    @overload
    def on(
        self, name: Literal["spawn"], callback: Callable[[SpawnEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["exit"], callback: Callable[[ExitEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["heartbeat-missed"], callback: Callable[[HeartbeatMissedEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["auto-restart"], callback: Callable[[AutoRestartEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["restart-failed"], callback: Callable[[RestartFailedEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["error"], callback: Callable[[ErrorEvent], object]
    ) -> Callable[[], None]: ...
    def on(self, name: EventName, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of that name; returns an unsubscriber.

        Names: ``spawn``, ``exit``, ``heartbeat-missed``, ``auto-restart``,
        ``restart-failed``, ``error``. A callback that raises is logged and ignored.
        """
        if name not in (
            "spawn",
            "exit",
            "heartbeat-missed",
            "auto-restart",
            "restart-failed",
            "error",
        ):
            raise ValueError(f"unknown event {name!r}")
        return self._emitter.on(name, callback)

    # --- spawning ---------------------------------------------------------------------------

    async def spawn_child(
        self,
        target: str,
        command: str | Sequence[str],
        mode: Mode = "sequential",
        group: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | None = None,
        stderr: StderrMode = "inherit",
        auto_restart: bool = True,
        request_shape: RequestShape | None = None,
        transport: TransportKind = "stdio",
    ) -> ProcessStats:
        """Start a child and send it INIT.

        ``command`` is any executable speaking the protocol on stdin/stdout: an argv list
        (``["node", "worker.js"]``) or a string split like a shell would
        (``"./my_worker --fast"``). ``env`` adds variables to the master's environment
        (with ``inherit_env=False`` the child gets ``env`` alone). ``stderr`` is
        ``inherit`` (the master's stderr), ``log`` (lines to the ``peepsy.stderr.TARGET``
        logger), ``capture`` (kept, see :meth:`get_stderr`) or ``discard``.

        ``transport="node-ipc"`` runs a Node peepsy worker unchanged: the protocol goes
        over Node's IPC channel (``child_process.fork``'s), and the worker's stdout and
        stderr are both logs, handled as ``stderr`` says. Use ``request_shape="legacy"``
        for workers older than the unified shape.
        """
        if self._closing:
            raise PeepsyShutdownError("the master is shutting down")
        if not target or target in self._children:
            raise ValueError(f"target {target!r} is empty or already in use")
        if group is not None and group in self._children:
            raise ValueError(f"group {group!r} has the name of a child")
        if target in self._groups:
            raise ValueError(f"target {target!r} has the name of a group")
        if mode not in ("sequential", "concurrent"):
            raise ValueError(f"mode is 'sequential' or 'concurrent', not {mode!r}")
        if transport not in ("stdio", "node-ipc"):
            raise ValueError(f"transport is 'stdio' or 'node-ipc', not {transport!r}")
        if stderr not in ("inherit", "log", "capture", "discard"):
            raise ValueError(f"stderr is inherit, log, capture or discard, not {stderr!r}")
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise ValueError("command is empty")
        spec = SpawnSpec(
            argv=argv,
            env=env,
            inherit_env=inherit_env,
            cwd=cwd,
            stderr=stderr,
            transport=transport,
        )
        handle = _ChildHandle(
            self, target, spec, mode, group, auto_restart, request_shape or self._request_shape
        )
        self._children[target] = handle
        if group is not None:
            self._groups.setdefault(group, _Group(group)).members.append(target)
        try:
            await self._start(handle, restart=False)
        except PeepsyProcessError:
            self._forget(handle)
            raise
        self._ensure_health_check()
        return handle.snapshot()

    async def _start(self, handle: _ChildHandle, *, restart: bool) -> None:
        self._loop = asyncio.get_running_loop()
        handle.conn = Connection(
            Role.MASTER,
            max_line_bytes=self._max_line_bytes,
            node_ipc=handle.spec.transport == "node-ipc",
        )
        handle.status = "starting"
        handle.last_heartbeat = None
        try:
            handle.transport = await self._launcher.spawn(handle.spec, handle)
        except Exception as exc:  # OSError, or ValueError for a NUL in an argument, ...
            handle.status = "failed"
            handle.transport = None
            raise PeepsyProcessError(
                f"could not start {handle.target}: {exc}", target=handle.target
            ) from exc
        # FRAME-6/11: the child may write lines up to our limit, when we can state it (a
        # limit under the 1 MiB every receiver takes cannot be).
        limit = (
            {"max_line_bytes": min(self._max_line_bytes, _MAX_STATED_LINE_BYTES)}
            if self._max_line_bytes >= MIN_MAX_LINE_BYTES
            else {}
        )
        init = Init(
            type="INIT",
            mode=handle.mode,
            protocol=PROTOCOL_VERSION,
            target=handle.target,
            heartbeat_interval=self._heartbeat_interval,
            **limit,
        )
        handle.transport.write(handle.conn.send(init))
        handle.status = "running"  # the process is up; it owes us no message to prove it
        log.info("spawned %s (pid %s)", handle.target, handle.transport.pid)
        self._emitter.emit(
            "spawn", SpawnEvent(handle.target, handle.transport.pid, handle.group, restart)
        )

    def _forget(self, handle: _ChildHandle) -> None:
        self._children.pop(handle.target, None)
        if handle.group is not None:
            group = self._groups.get(handle.group)
            if group is not None and handle.target in group.members:
                group.members.remove(handle.target)

    def configure_group(
        self,
        group: str,
        *,
        strategy: Strategy | None = None,
        max_concurrency: int | None = None,
        auto_restart: bool | None = None,
    ) -> None:
        """Set a group's load-balancing ``strategy`` (``round-robin``, the default,
        ``random`` or ``least-busy``), its cap on requests in flight across its members
        (excess requests wait at the master, highest priority first, each within its
        own timeout) and whether its members restart when they die."""
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        if max_concurrency is not None:
            check_int("max_concurrency", max_concurrency, 1)
        if group in self._children:
            raise ValueError(f"{group!r} is a child, not a group")
        g = self._groups.setdefault(group, _Group(group))
        if strategy is not None:
            g.strategy = strategy
        if max_concurrency is not None:
            g.max_concurrency = max_concurrency
            self._admit(g)
        if auto_restart is not None:
            g.auto_restart = auto_restart

    # --- requests ------------------------------------------------------------------------

    @overload
    async def request(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        data: Req,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Resp: ...
    @overload
    async def request(
        self,
        action: str,
        target: str,
        data: ReqT = ...,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Reply[RespT]: ...
    async def request(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Any:
        """Send ``action`` with ``data`` to a child or a group; return the answer.

        A string action resolves to a :class:`Reply` (status, data, id, target). A typed
        :class:`~peepsy.Action` resolves to its response type, validated.

        Fails with :class:`~peepsy.RemoteError` when the child answers with a failure
        status, :class:`~peepsy.PeepsyTimeoutError` after ``timeout`` ms,
        :class:`~peepsy.PeepsyProcessError` when the child dies with the request in
        flight or no member is running, :class:`~peepsy.PeepsyNotFoundError` for an
        unknown target, :class:`~peepsy.protocol.InvalidResponse` at once when the
        child's answer is invalid (MSG-9), :class:`~peepsy.protocol.LineTooLongForPeer`
        without sending when the request is longer than the child's READY allows
        (FRAME-11). Retries (``retries``, default ``max_retries``, ``retry_delay``
        apart) cover only faults after which the request cannot have completed or
        cannot be told to have: timeouts, process errors, unknown targets and 408/503
        answers (the request never ran). Other failure statuses are retried only when
        listed in ``retry_statuses``.
        """
        if isinstance(action, str):
            name, payload = action, data
        else:
            name = action.name
            payload = action.dump_request(data)
        timeout = self._timeout if timeout is None else timeout
        check_ms("timeout", timeout)
        if retries is not None:
            check_int("retries", retries, 0)
        attempts = 1 + (self._max_retries if retries is None else retries)
        for attempt in range(1, attempts + 1):
            try:
                response, handle = await self._attempt(name, target, payload, timeout, priority)
                if response.status >= 400:
                    raise error_from_wire(response, action=name, target=handle.target)
            except (
                PeepsyTimeoutError,
                PeepsyProcessError,
                PeepsyNotFoundError,
                RemoteError,
            ) as exc:
                if attempt >= attempts or not _retryable(exc, retry_statuses):
                    raise
                log.info(
                    "retrying %s on %s (attempt %d of %d): %s",
                    name,
                    target,
                    attempt + 1,
                    attempts,
                    exc,
                )
                await asyncio.sleep(self._retry_delay / 1000)
                continue
            result = None if response.data is MISSING else response.data
            if not isinstance(action, str):
                return action.parse_response(result)
            return Reply(
                status=response.status,
                data=result,
                id=response.id,
                target=handle.target,
                action=name,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, action: str, target: str, data: Any, timeout: int, priority: int | None
    ) -> tuple[Response, _ChildHandle]:
        if self._closing:
            raise PeepsyShutdownError("the master is shutting down")
        loop = asyncio.get_running_loop()
        started = loop.time()
        remaining = timeout
        handle = self._children.get(target)
        group = self._groups.get(target if handle is None else handle.group or "")
        if handle is None and group is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {target}")
        if handle is not None and not handle.accepts:
            raise PeepsyProcessError(f"{target} is not running ({handle.status})", target=target)
        if group is not None:
            # A group's cap counts every request to its members, direct ones included.
            if group.has_capacity():
                group.active += 1
            else:
                await self._wait_for_capacity(group, timeout, priority, target)
                remaining = timeout - int((loop.time() - started) * 1000)
            # From here the group slot is ours until _finish (or the except below).
            try:
                if handle is None:
                    handle = self._pick(group)
                elif not handle.accepts:
                    raise PeepsyProcessError(
                        f"{target} is not running ({handle.status})", target=target
                    )
                if remaining < 1:
                    raise PeepsyTimeoutError(
                        f"Request timed out after {timeout}ms for target: {target}",
                        action=action,
                        target=target,
                        timeout_ms=timeout,
                    )
                rid, line = handle.conn.send_request(
                    action, data, timeout=remaining, priority=priority, legacy=handle.legacy
                )
            except BaseException:
                group.active -= 1
                self._admit(group)
                raise
        else:
            assert handle is not None
            rid, line = handle.conn.send_request(
                action, data, timeout=remaining, priority=priority, legacy=handle.legacy
            )
        future: asyncio.Future[Response] = loop.create_future()
        call = _Call(handle, rid, action, future, timeout, started)
        call.group = group
        call.deadline = started + timeout / 1000
        self._deadlines_for(loop).add(call)
        handle.inflight[rid] = call
        transport = handle.transport
        assert transport is not None
        transport.write(line)
        try:
            return await future, handle
        except asyncio.CancelledError:
            # The caller gave up: release everything this attempt holds.
            if handle.inflight.pop(rid, None) is not None:
                handle.conn.forget(rid)
                self._finish(call)
            raise

    def _pick(self, group: _Group) -> _ChildHandle:
        members = [self._children[t] for t in group.members if t in self._children]
        ready = [h for h in members if h.available]
        if not ready:
            raise PeepsyProcessError(f"no running member in group {group.name}", target=group.name)
        if group.strategy == "random":
            return random.choice(ready)  # noqa: S311 - load spreading, not security
        if group.strategy == "least-busy":
            return min(ready, key=lambda h: len(h.inflight))
        group.next_index %= len(ready)
        handle = ready[group.next_index]
        group.next_index += 1
        return handle

    async def _wait_for_capacity(
        self, group: _Group, timeout: int, priority: int | None, target: str
    ) -> None:
        """Wait for a slot in ``group`` (SCHED-4): highest priority first, then arrival,
        each waiter bounded by its own timeout (Node defect 3)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        heapq.heappush(group.waiters, (-(priority or 0), next(group.seq), waiter))
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives in the same loop pass as the slot is granted.
            async with asyncio.timeout(timeout / 1000):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                # Admitted at the last moment: give the slot back.
                group.active -= 1
                self._admit(group)
            waiter.cancel()
            raise PeepsyTimeoutError(
                f"Request timed out after {timeout}ms for target: {target} "
                f"(waiting for group capacity)",
                target=target,
                timeout_ms=timeout,
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                group.active -= 1
                self._admit(group)
            waiter.cancel()
            raise

    def _admit(self, group: _Group) -> None:
        while group.waiters and group.has_capacity():
            _, _, waiter = heapq.heappop(group.waiters)
            if not waiter.done():
                group.active += 1
                waiter.set_result(None)

    def _finish(self, call: _Call) -> None:
        """Release what an attempt holds: the timer, the child's and the group's count
        (whatever ended it: answer, timeout, death, cancel; Node defect 1)."""
        call.settled = True
        group = call.group
        if group is not None:
            group.active -= 1
            self._admit(group)

    def _timed_out(self, call: _Call) -> None:
        handle = call.handle
        if handle.inflight.pop(call.id, None) is None:
            return
        handle.conn.forget(call.id)
        handle.errors += 1
        handle.timeouts += 1
        self._finish(call)
        if not call.future.done():
            call.future.set_exception(
                PeepsyTimeoutError(
                    f"Request timed out after {call.timeout}ms for target: {handle.target}",
                    action=call.action,
                    target=handle.target,
                    timeout_ms=call.timeout,
                )
            )

    # --- what children send -------------------------------------------------------------

    def _on_event(self, handle: _ChildHandle, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            self._on_response(handle, event)
        elif isinstance(event, RequestReceived):
            self._serve_child_request(handle, event)
        elif isinstance(event, HeartbeatReceived):
            assert self._loop is not None
            handle.last_heartbeat = self._loop.time()
            handle.last_heartbeat_wall = _now_ms()
            if handle.status == "unhealthy":
                handle.status = "running"
        elif isinstance(event, MessageRejected):
            self._on_garbage(handle, event)
        elif isinstance(event, InvalidResponseReceived):
            self._on_invalid_response(handle, event)
        elif isinstance(event, UnmatchedResponse):
            if event.late:
                handle.late_responses += 1
                log.debug("%s: dropped a late answer to %s", handle.target, event.response.id)
            else:
                handle.rejected_lines += 1
                err = RemoteProtocolError(f"answer to a request never sent: {event.response.id!r}")
                log.warning("%s sent a bad line: %s (ID-4)", handle.target, err)
                self._emitter.emit("error", ErrorEvent(handle.target, err))
        elif isinstance(event, ReadyReceived):
            actions = event.message.actions
            handle.actions = None if actions is MISSING else tuple(actions)

    def _on_response(self, handle: _ChildHandle, event: ResponseReceived) -> None:
        call = handle.inflight.pop(event.response.id, None)
        if call is None:  # pragma: no cover - the core reports only ids we wait for
            return
        self._finish(call)
        assert self._loop is not None
        elapsed = (self._loop.time() - call.started) * 1000
        handle.avg_response = (
            elapsed
            if handle.requests_handled == 0
            else handle.avg_response + EMA_ALPHA * (elapsed - handle.avg_response)
        )
        handle.requests_handled += 1
        if not event.ok:
            handle.errors += 1
        if not call.future.done():
            call.future.set_result(event.response)

    def _on_invalid_response(self, handle: _ChildHandle, event: InvalidResponseReceived) -> None:
        # MSG-9: the child answered, wrongly; its caller learns it now, not at its timeout.
        handle.rejected_lines += 1
        handle.errors += 1
        log.warning("%s sent a bad line: %s", handle.target, event.error)
        self._emitter.emit("error", ErrorEvent(handle.target, event.error))
        call = handle.inflight.pop(event.id, None)
        if call is None:  # pragma: no cover - the core reports only ids we wait for
            return
        self._finish(call)
        if not call.future.done():
            call.future.set_exception(event.error)

    def _on_garbage(self, handle: _ChildHandle, event: MessageRejected) -> None:
        handle.rejected_lines += 1
        err = event.error
        log.warning("%s sent a bad line: %s", handle.target, err)
        self._emitter.emit("error", ErrorEvent(handle.target, err))
        if err.request_id is not None and handle.transport is not None:
            status, payload = error_to_wire(err)
            handle.transport.write(
                handle.conn.send_response(err.request_id, status, error_payload=payload)
            )

    def _serve_child_request(self, handle: _ChildHandle, event: RequestReceived) -> None:
        entry = self._handlers.get(event.action)
        if entry is None:
            message = NOT_FOUND_TEMPLATE.format(action=printable(event.action))
            payload = ErrorPayload(
                name="PeepsyNotFoundError", message=message, code="PEEPSY_NOT_FOUND"
            )
            assert handle.transport is not None
            handle.transport.write(handle.conn.send_response(event.id, 404, error_payload=payload))
            return
        task = asyncio.get_running_loop().create_task(self._run_handler(handle, event, entry))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_handler(self, handle: _ChildHandle, event: RequestReceived, entry: Any) -> None:
        conn, transport = handle.conn, handle.transport
        try:
            result = await entry.run(event.data, None)
            line = conn.send_response(event.id, 200, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status, payload = error_to_wire(exc, include_stack=self._include_stack, ran=True)
            try:
                line = conn.send_response(event.id, status, error_payload=payload)
            except EncodeError:
                line = conn.send_response(event.id, status, error_payload=bare_payload(payload))
        # Answer on the connection the request came in on; a restarted child is another.
        if transport is not None and transport is handle.transport:
            transport.write(line)

    # --- deaths and restarts (Node defect 2) -------------------------------------------

    def _on_exit(self, handle: _ChildHandle, returncode: int | None) -> None:
        expected = handle.stop_requested or self._closing
        sig = -returncode if returncode is not None and returncode < 0 else None
        failed = list(handle.inflight.values())
        handle.inflight.clear()
        how = f"signal {signal_module.Signals(sig).name}" if sig else f"code {returncode}"
        for call in failed:
            self._finish(call)
            handle.errors += 1
            if not call.future.done():
                call.future.set_exception(
                    PeepsyProcessError(
                        f"{handle.target} exited ({how}) before answering {call.action!r}",
                        target=handle.target,
                        returncode=returncode,
                    )
                )
        pid = handle.transport.pid if handle.transport is not None else None
        (log.info if expected else log.warning)(
            "%s (pid %s) exited with %s", handle.target, pid, how
        )
        self._emitter.emit(
            "exit", ExitEvent(handle.target, pid, returncode, sig, expected, len(failed))
        )
        if expected:
            handle.status = "stopped"
            return
        group = self._groups.get(handle.group) if handle.group else None
        if not handle.auto_restart or (group is not None and not group.auto_restart):
            handle.status = "stopped"
            return
        assert self._loop is not None
        now = self._loop.time()
        window = self._restart_window / 1000
        while handle.restart_times and now - handle.restart_times[0] > window:
            handle.restart_times.popleft()
        if len(handle.restart_times) >= self._max_restarts:
            handle.status = "failed"
            log.error(
                "%s restarted %d times within %d ms; giving up",
                handle.target,
                len(handle.restart_times),
                self._restart_window,
            )
            self._emitter.emit(
                "restart-failed",
                RestartFailedEvent(handle.target, len(handle.restart_times), self._restart_window),
            )
            return
        handle.restart_times.append(now)
        handle.restarts += 1
        handle.status = "restarting"
        self._emitter.emit(
            "auto-restart",
            AutoRestartEvent(handle.target, returncode, sig, len(handle.restart_times)),
        )
        task = self._loop.create_task(self._restart(handle))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, handle: _ChildHandle) -> None:
        if self._closing or handle.stop_requested:
            return
        try:
            await self._start(handle, restart=True)
        except PeepsyProcessError as exc:
            log.error("%s could not be restarted: %s", handle.target, exc)
            self._emitter.emit("error", ErrorEvent(handle.target, exc))

    # --- health (HB-2; Node defects 6 and 9) --------------------------------------------

    def _ensure_health_check(self) -> None:
        if self._health is None and self._loop is not None:
            self._health = self._loop.call_later(
                self._heartbeat_interval / 1000, self._check_health
            )

    def _check_health(self) -> None:
        assert self._loop is not None
        self._health = None
        now = self._loop.time()
        limit = self._heartbeat_interval * self._miss_threshold / 1000
        for handle in list(self._children.values()):
            # A child that never sent a HEARTBEAT promised none (HB-2): only its exit tells.
            if handle.last_heartbeat is None or not handle.alive or handle.status == "unhealthy":
                continue
            silent = now - handle.last_heartbeat
            if silent <= limit:
                continue
            handle.status = "unhealthy"
            log.warning("%s sent no heartbeat for %.1f s", handle.target, silent)
            self._emitter.emit(
                "heartbeat-missed",
                HeartbeatMissedEvent(handle.target, _now_ms(), int(silent * 1000)),
            )
            group = self._groups.get(handle.group) if handle.group else None
            if (
                handle.auto_restart
                and (group is None or group.auto_restart)
                and handle.transport is not None
            ):
                handle.transport.kill()
        if not self._closing and self._children:
            self._ensure_health_check()

    # --- introspection ------------------------------------------------------------------

    def _handle(self, target: str) -> _ChildHandle:
        handle = self._children.get(target)
        if handle is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {target}")
        return handle

    def get_process_stats(self, target: str) -> ProcessStats:
        return self._handle(target).snapshot()

    def get_group_stats(self, group: str) -> GroupStats:
        g = self._groups.get(group)
        if g is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {group}")
        processes = {t: self._children[t].snapshot() for t in g.members if t in self._children}
        return GroupStats(
            group=group,
            strategy=g.strategy,
            max_concurrency=g.max_concurrency,
            auto_restart=g.auto_restart,
            total_requests=sum(p.requests_handled for p in processes.values()),
            active_requests=g.active,
            queued_requests=sum(1 for _, _, w in g.waiters if not w.done()),
            processes=processes,
        )

    def get_unhealthy_processes(self) -> list[str]:
        return [t for t, h in self._children.items() if h.status == "unhealthy"]

    def is_process_alive(self, target: str) -> bool:
        handle = self._children.get(target)
        return handle is not None and handle.alive

    def get_active_requests_count(self) -> int:
        return sum(len(h.inflight) for h in self._children.values())

    @property
    def active_requests(self) -> int:
        return self.get_active_requests_count()

    @property
    def targets(self) -> list[str]:
        return list(self._children)

    def get_stderr(self, target: str) -> list[str]:
        """The last lines a child wrote to stderr (``stderr="capture"`` or ``"log"``)."""
        return list(self._handle(target).stderr_tail)

    # --- stopping (SHUT-3) --------------------------------------------------------------

    async def shutdown_child(self, target: str, timeout: int = 5000) -> int | None:
        """Ask a child to stop and wait; escalate at the deadline: close its stdin, then
        SIGTERM, then SIGKILL (one second each). Returns its exit status. The target is
        removed."""
        handle = self._handle(target)
        handle.stop_requested = True
        transport = handle.transport
        code: int | None = None
        if transport is not None and transport.returncode is None:
            handle.status = "stopping"
            transport.write(
                handle.conn.send(Shutdown(type="SHUTDOWN", timeout=max(1, min(timeout, 300_000))))
            )
            code = await self._stop_transport(transport, timeout)
        elif transport is not None:
            code = transport.returncode
        handle.status = "stopped"
        self._forget(handle)
        return code

    async def _stop_transport(self, transport: ChildTransport, timeout: int) -> int | None:
        steps: list[tuple[Callable[[], None] | None, float]] = [
            (None, timeout / 1000),
            (transport.close_input, 1.0),
            (transport.terminate, 1.0),
            (transport.kill, 5.0),
        ]
        for action, wait in steps:
            if action is not None:
                action()
            try:
                return await asyncio.wait_for(transport.wait(), wait)
            except TimeoutError:
                continue
        return transport.returncode  # pragma: no cover - SIGKILL did not end it

    async def graceful_shutdown(self, timeout: int = 30_000) -> None:
        """Stop every child (in parallel, each as :meth:`shutdown_child`), fail requests
        still waiting for group capacity, and stop supervising."""
        self._closing = True
        if self._health is not None:
            self._health.cancel()
            self._health = None
        for group in self._groups.values():
            while group.waiters:
                _, _, waiter = heapq.heappop(group.waiters)
                if not waiter.done():
                    waiter.set_exception(PeepsyShutdownError("the master is shutting down"))
        if self._restarts:
            # A respawn under way finishes first, so that its new process is stopped below
            # like the others instead of outliving the master.
            await asyncio.gather(*self._restarts, return_exceptions=True)
        targets = list(self._children)
        if targets:
            await asyncio.gather(
                *(self.shutdown_child(t, timeout) for t in targets), return_exceptions=True
            )
        for task in list(self._background):
            task.cancel()


def _retryable(exc: PeepsyError, retry_statuses: Collection[int]) -> bool:
    if isinstance(exc, RemoteError):
        return exc.status in SAFE_RETRY_STATUSES or exc.status in retry_statuses
    return True
