"""Events a master emits, as typed records, and the small emitter behind ``Master.on``."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args, overload

log = logging.getLogger("peepsy.master")


@dataclass(frozen=True, slots=True)
class SpawnEvent:
    """A child was started (``restart``: as an automatic restart of a child that ended).
    ``pid`` is ``None`` for an in-memory child."""

    target: str
    pid: int | None
    group: str | None
    restart: bool


@dataclass(frozen=True, slots=True)
class ExitEvent:
    """A child process ended. ``expected`` is true when the master asked it to stop."""

    target: str
    pid: int | None
    returncode: int | None
    signal: int | None
    expected: bool
    failed_requests: int


@dataclass(frozen=True, slots=True)
class HeartbeatMissedEvent:
    """A child sent no HEARTBEAT for longer than the master allows; it is marked unhealthy
    (and taken out of its group's rotation) until one comes."""

    target: str
    timestamp: int
    """Wall-clock ms when the miss was noticed."""
    silent_for: int
    """Ms since the last HEARTBEAT."""


@dataclass(frozen=True, slots=True)
class AutoRestartEvent:
    """A child that ended on its own is being restarted (``auto_restart``); ``code`` and
    ``signal`` say how it ended."""

    target: str
    code: int | None
    signal: int | None
    attempt: int
    """How many restarts within the restart window, this one included."""


@dataclass(frozen=True, slots=True)
class RestartFailedEvent:
    """The child exceeded its restart intensity and is left stopped (status ``failed``)."""

    target: str
    restarts: int
    window: int


@dataclass(frozen=True, slots=True)
class StalledEvent:
    """A member kept a request past its deadline by more than the master's
    ``stall_grace``: it is out of its group's rotation until it answers."""

    target: str
    action: str
    """The action of the request it still holds."""
    overdue_for: int
    """Ms since that request's deadline."""


@dataclass(frozen=True, slots=True)
class RecoveredEvent:
    """A stalled member, or one taken out of rotation as stuck, is back in its group's
    rotation."""

    target: str
    reason: Literal["answered", "exited"]
    """``answered``: it sent an answer (any); ``exited``: its process ended, and the
    request it held with it."""


@dataclass(frozen=True, slots=True)
class StuckEvent:
    """A handler still ran ``cancel_grace`` ms after its request's CANCEL (a 1.1 child
    that did not stop it): its worker is dealt with as ``policy`` says."""

    target: str
    request_id: str
    action: str
    policy: Literal["replace", "rotate-out"]
    """``replace``: its process is stopped and a new one started; ``rotate-out``: it is
    out of its group's rotation until that request is answered."""


@dataclass(frozen=True, slots=True)
class ReplacedEvent:
    """A worker's process was stopped by the master (its exit follows, ``expected``) and a
    new one is being started from the same spawn arguments."""

    target: str
    reason: Literal["stuck"]


@dataclass(frozen=True, slots=True)
class RearmEvent:
    """A ``failed`` child (over its restart limit) is started again, by
    :meth:`~peepsy.Master.restart_child` (``manual``) or after the master's
    ``restart_cooldown`` (``cooldown``); its restart count starts afresh."""

    target: str
    reason: Literal["manual", "cooldown"]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something went wrong that no caller will see: a line from a child that broke the
    protocol, a restart that failed, or a channel that ended while its process lived on."""

    target: str | None
    error: BaseException


EventName = Literal[
    "spawn",
    "exit",
    "heartbeat-missed",
    "auto-restart",
    "restart-failed",
    "rearm",
    "stalled",
    "recovered",
    "stuck",
    "replaced",
    "error",
]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)
AnyEvent: TypeAlias = (
    SpawnEvent
    | ExitEvent
    | HeartbeatMissedEvent
    | AutoRestartEvent
    | RestartFailedEvent
    | RearmEvent
    | StalledEvent
    | RecoveredEvent
    | StuckEvent
    | ReplacedEvent
    | ErrorEvent
)


class Emitter:
    __slots__ = ("_listeners", "_tasks")

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], object]]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    def on(self, name: str, callback: Callable[[Any], object]) -> Callable[[], None]:
        listeners = self._listeners.setdefault(name, [])
        listeners.append(callback)

        def unsubscribe() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return unsubscribe

    def emit(self, name: str, event: AnyEvent) -> None:
        for callback in list(self._listeners.get(name, ())):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    # An async callback runs as a task of its own; its failure is logged.
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                log.exception("a %r event callback raised", name)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an async event callback raised", exc_info=task.exception())


class Observable:
    """``on(name, callback)``, typed per event name, for a class that has an emitter."""

    _emitter: Emitter

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
        self, name: Literal["rearm"], callback: Callable[[RearmEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["stalled"], callback: Callable[[StalledEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["recovered"], callback: Callable[[RecoveredEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["stuck"], callback: Callable[[StuckEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["replaced"], callback: Callable[[ReplacedEvent], object]
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, name: Literal["error"], callback: Callable[[ErrorEvent], object]
    ) -> Callable[[], None]: ...
    def on(self, name: EventName, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of that name; returns an unsubscriber.

        Names: ``spawn``, ``exit``, ``heartbeat-missed``, ``auto-restart``,
        ``restart-failed``, ``rearm``, ``stalled``, ``recovered``, ``stuck``,
        ``replaced``, ``error``. A callback that raises is logged and ignored.
        """
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}")
        return self._emitter.on(name, callback)
