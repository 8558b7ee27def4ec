"""The reference master: the public face over its parts.

Policy only, in parts that do not reach into each other: a ``Worker`` per child (state
machine, session, stats), ``Group`` (balancing, capacity slots), the ``Spawner``
(processes, sessions, INIT and SHUTDOWN), the ``Router`` (where a request goes) and the
``Supervisor`` (deaths, restarts, health). docs/architecture.md follows a request
through them. Fixes over Node peepsy 1.0.1 cite shared/reference/node-peepsy-wire-facts.md
("Node defect N").
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Generic, Literal, overload

from typing_extensions import TypeVar

from peepsy._actions import ActionLike, HandlerRegistry, Handlers
from peepsy._checks import check_bool, check_int, check_ms
from peepsy._errors import (
    PeepsyProcessError,
    PeepsyShutdownError,
)
from peepsy._failures import NOT_RUN_STATUSES
from peepsy.master._events import (
    Emitter,
    Observable,
)
from peepsy.master._fanout import FanOut
from peepsy.master._groups import STRATEGIES, Group
from peepsy.master._introspection import process_stats
from peepsy.master._lifecycle import Lifecycle
from peepsy.master._routing import Router
from peepsy.master._spawner import Spawner
from peepsy.master._stats import ProcessStats, Reply, Strategy
from peepsy.master._stuck import DEFAULT_CANCEL_GRACE, OnStuck, StuckPolicy, check_on_stuck
from peepsy.master._supervisor import Supervisor
from peepsy.master._typed import UNRESOLVED, TypedData, checked_request, typed_data
from peepsy.master._worker import Worker, WorkerHooks
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    ProcessingMode,
)
from peepsy.session import RetryPolicy
from peepsy.transport import (
    Launcher,
    ProcessLauncher,
    SpawnSpec,
    SshHost,
    StderrMode,
    TransportKind,
)
from peepsy.transport._ssh import as_host

Mode = ProcessingMode
RequestShape = Literal["unified", "legacy"]
ReqT = TypeVar("ReqT", default=Any)
RespT = TypeVar("RespT", default=Any)
Req = TypeVar("Req")
Resp = TypeVar("Resp")

#: Statuses whose answer means the request never ran, so a retry cannot repeat work.
SAFE_RETRY_STATUSES: Final = NOT_RUN_STATUSES
#: How many requests from one child the master's handlers run at once by default.
DEFAULT_SERVE_CONCURRENCY: Final = 16
#: How long past a request's deadline a member may hold it before it leaves its
#: group's rotation (ms).
DEFAULT_STALL_GRACE: Final = 1000
#: How long a restarted child that says nothing (no READY, no HEARTBEAT) is kept out of
#: its group's rotation (ms; READY-3: it need not speak).
DEFAULT_STARTUP_GRACE: Final = 1000


class Master(HandlerRegistry, Observable, Lifecycle, FanOut[ReqT, RespT], Generic[ReqT, RespT]):
    """Spawns and supervises children and exchanges requests with them.

    ::

        async with Master(timeout=5000) as master:
            await master.spawn_child("w1", ["python", "worker.py"])
            reply = await master.request("add", "w1", {"a": 1, "b": 2})
            print(reply.data)

    The type parameters are the data types of requests and responses for actions named
    by string (``Master[Any, Any]`` by default); :class:`~peepsy.Action` declarations type
    each action on its own. A subscripted master, ``Master[AddParams, AddResult]()``,
    holds to them at run time: the data it sends is validated against the first (a model
    is written as its JSON fields), the data of its replies against the second (a
    :class:`~peepsy.PeepsyValidationError` when it does not fit, the parsed value when it
    does); ``validate_types=False`` trusts both sides instead, for a hot path. Durations
    are integer milliseconds, as on the wire.
    :meth:`map` and :meth:`as_completed` fan an iterable of requests out to a target
    with bounded concurrency (docs/scripts.md).
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
        serve_concurrency: int | None = DEFAULT_SERVE_CONCURRENCY,
        stall_grace: int = DEFAULT_STALL_GRACE,
        startup_grace: int = DEFAULT_STARTUP_GRACE,
        restart_cooldown: int | None = None,
        cancel_grace: int = DEFAULT_CANCEL_GRACE,
        on_stuck: OnStuck = "replace",
        judge_uncancellable: bool = False,
        validate_types: bool = True,
    ) -> None:
        check_ms("timeout", timeout)
        check_bool("validate_types", validate_types)
        self._typed: TypedData | None = UNRESOLVED if validate_types else None
        check_bool("judge_uncancellable", judge_uncancellable)
        check_ms("cancel_grace", cancel_grace)
        check_on_stuck(on_stuck)
        check_ms("stall_grace", stall_grace)
        check_ms("startup_grace", startup_grace)
        if restart_cooldown is not None:
            check_ms("restart_cooldown", restart_cooldown)
        check_ms("heartbeat_interval", heartbeat_interval)
        check_int("max_retries", max_retries, 0)
        check_int("retry_delay", retry_delay, 0)
        check_int("heartbeat_miss_threshold", heartbeat_miss_threshold, 1)
        check_int("max_restarts", max_restarts, 0)
        check_int("restart_window", restart_window, 1)
        if serve_concurrency is not None:
            check_int("serve_concurrency", serve_concurrency, 1)
        if request_shape not in ("unified", "legacy"):
            raise ValueError("request_shape is 'unified' or 'legacy'")
        self._handlers = Handlers()
        self._closing = False
        self._request_shape: RequestShape = request_shape
        self._workers: dict[str, Worker] = {}
        self._groups: dict[str, Group] = {}
        self._emitter = Emitter()
        self._spawner = Spawner(
            launcher or ProcessLauncher(),
            self._handlers,
            self._emitter,
            max_line_bytes=max_line_bytes,
            heartbeat_interval=heartbeat_interval,
            include_stack=include_stack,
            serve_concurrency=serve_concurrency,
            cancel_grace=cancel_grace,
        )
        self._router = Router(
            self._workers,
            self._groups,
            RetryPolicy(max_retries, retry_delay),
            timeout,
        )
        self._supervisor = Supervisor(
            self._emitter,
            lambda worker: self._spawner.start(worker, restart=True),
            self._may_restart,
            max_restarts=max_restarts,
            restart_window=restart_window,
            heartbeat_interval=heartbeat_interval,
            miss_threshold=heartbeat_miss_threshold,
            restart_cooldown=restart_cooldown,
        )
        self._stuck = StuckPolicy(on_stuck, self._groups, self._emitter, self._supervisor.replace)
        self._hooks = WorkerHooks(
            on_exit=self._supervisor.exited,
            on_change=self._router.changed,
            on_broken=self._supervisor.broken,
            on_stuck=self._stuck,
            stall_grace=stall_grace / 1000,
            startup_grace=startup_grace / 1000,
            cancel_grace=cancel_grace / 1000,
            judge_uncancellable=judge_uncancellable,
        )

    async def __aenter__(self) -> Master[ReqT, RespT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.graceful_shutdown()

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
        max_line_bytes: int | None = None,
        on_stuck: OnStuck | None = None,
        judge_uncancellable: bool | None = None,
        host: str | SshHost | None = None,
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
        for workers older than the unified shape. ``max_line_bytes`` sets this child's
        line limit both ways instead of the master's: the longest line read from it, and
        the longest sent to it until its READY states its own (see "Limits" in the guide).
        ``on_stuck`` is this child's policy for a handler that ignores its CANCEL
        (``replace`` or ``rotate-out``; by default its group's, else the master's).
        ``judge_uncancellable`` (by default the master's) judges this child by that policy
        even when it cannot be sent CANCEL (protocol 1.0, the Node original).

        ``host`` (an :class:`~peepsy.SshHost`, or a string for ``SshHost(that)``) runs
        the command on that host over OpenSSH: ``cwd`` and ``env`` there, on top of the
        remote login environment; :class:`~peepsy.PeepsySshError` when it cannot be
        reached (docs/scaling-out.md).
        """
        if self._closing:
            raise PeepsyShutdownError("the master is shutting down")
        if not target or target in self._workers:
            raise ValueError(f"target {target!r} is empty or already in use")
        if group is not None and group in self._workers:
            raise ValueError(f"group {group!r} has the name of a child")
        if target in self._groups:
            raise ValueError(f"target {target!r} has the name of a group")
        if mode not in ("sequential", "concurrent"):
            raise ValueError(f"mode is 'sequential' or 'concurrent', not {mode!r}")
        if transport not in ("stdio", "node-ipc"):
            raise ValueError(f"transport is 'stdio' or 'node-ipc', not {transport!r}")
        if stderr not in ("inherit", "log", "capture", "discard"):
            raise ValueError(f"stderr is inherit, log, capture or discard, not {stderr!r}")
        if max_line_bytes is not None:
            check_int("max_line_bytes", max_line_bytes, 2)
        if on_stuck is not None:
            check_on_stuck(on_stuck)
        if judge_uncancellable is not None:
            check_bool("judge_uncancellable", judge_uncancellable)
        ssh_host = as_host(host, transport)
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise ValueError("command is empty")
        spec = SpawnSpec(
            argv=argv, env=env, inherit_env=inherit_env, cwd=cwd, stderr=stderr, transport=transport
        )
        if ssh_host is not None:
            spec = replace(spec, extra={"host": ssh_host})
        worker = Worker(
            target,
            spec,
            mode,
            group,
            auto_restart=auto_restart,
            legacy=(request_shape or self._request_shape) == "legacy",
            emitter=self._emitter,
            hooks=self._hooks,
            max_line_bytes=max_line_bytes,
            on_stuck=on_stuck,
            judge_uncancellable=judge_uncancellable,
        )
        self._workers[target] = worker
        if group is not None:
            self._groups.setdefault(group, Group(group)).members.append(worker)
        try:
            await self._spawner.start(worker, restart=False)
        except PeepsyProcessError:
            self._forget(worker)
            raise
        self._supervisor.watch(self._workers.values)
        return process_stats(worker)

    def configure_group(
        self,
        group: str,
        *,
        strategy: Strategy | None = None,
        max_concurrency: int | None = None,
        auto_restart: bool | None = None,
        on_stuck: OnStuck | None = None,
    ) -> None:
        """Set a group's load-balancing ``strategy`` (``round-robin``, the default,
        ``random`` or ``least-busy``), its cap on requests in flight across its members
        (excess requests wait at the master, highest priority first, each within its
        own timeout), whether its members restart when they die, and its members'
        policy for a stuck handler (``on_stuck``; a member's own, if it has one, wins)."""
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        if max_concurrency is not None:
            check_int("max_concurrency", max_concurrency, 1)
        if on_stuck is not None:
            check_on_stuck(on_stuck)
        if group in self._workers:
            raise ValueError(f"{group!r} is a child, not a group")
        g = self._groups.setdefault(group, Group(group))
        if strategy is not None:
            g.strategy = strategy
        if max_concurrency is not None:
            g.max_concurrency = max_concurrency
            g.admit()
        if auto_restart is not None:
            g.auto_restart = auto_restart
        if on_stuck is not None:
            g.on_stuck = on_stuck

    # --- requests ------------------------------------------------------------------------

    @overload
    def request(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        data: Req,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Coroutine[Any, Any, Resp]: ...
    @overload
    def request(
        self,
        action: str,
        target: str,
        data: ReqT = ...,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Coroutine[Any, Any, Reply[RespT]]: ...
    def request(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Coroutine[Any, Any, Any]:
        """Send ``action`` with ``data`` to a child or a group; return the answer.

        A string action resolves to a :class:`Reply` (status, data, id, target). A typed
        :class:`~peepsy.Action` resolves to its response type, validated.

        Fails with :class:`~peepsy.RemoteError` when the child answers with a failure
        status, :class:`~peepsy.PeepsyTimeoutError` after ``timeout`` ms (time spent
        waiting for a restarting child, or for a group member in rotation, counts),
        :class:`~peepsy.PeepsyProcessError` when the child dies with the request in
        flight or is stopped or failed (for a group: every member is),
        :class:`TypeError` for an argument of the wrong type,
        :class:`~peepsy.PeepsyValidationError` when a subscripted master's data (before
        sending) or reply does not fit its type arguments,
        :class:`~peepsy.PeepsyNotFoundError` for an
        unknown target, :class:`~peepsy.protocol.InvalidResponse` at once when the
        child's answer is invalid (MSG-9), :class:`~peepsy.protocol.LineTooLongForPeer`
        without sending when the request is longer than the child's READY allows
        (FRAME-11). Retries (``retries``, default ``max_retries``, ``retry_delay``
        apart) cover only faults after which the request cannot have completed or
        cannot be told to have: timeouts, process errors, unknown targets and 408/503
        answers (the request never ran). Other failure statuses are retried only when
        listed in ``retry_statuses``.
        """
        # A plain method handing back the router's coroutine: the caller awaits one
        # coroutine per request, not two. An unsubscripted master pays one test for its
        # type arguments (found at its first request: Python records them after __init__).
        if self._typed is None:
            return self._router.request(
                action, target, data, timeout, retries, priority, retry_statuses
            )
        if self._typed is UNRESOLVED:
            self._typed = typed_data(self, Master)
        args = (timeout, retries, priority, retry_statuses)
        return checked_request(self._typed, self._router.request, action, target, data, *args)
