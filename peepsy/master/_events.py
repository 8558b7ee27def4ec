"""Events a master emits, as typed records, and the small emitter behind ``Master.on``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

log = logging.getLogger("peepsy.master")


@dataclass(frozen=True, slots=True)
class SpawnEvent:
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
    target: str
    timestamp: int
    """Wall-clock ms when the miss was noticed."""
    silent_for: int
    """Ms since the last HEARTBEAT."""


@dataclass(frozen=True, slots=True)
class AutoRestartEvent:
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
class ErrorEvent:
    """Something went wrong that no caller will see: a garbage line from a child, a
    failed respawn, a callback that raised."""

    target: str | None
    error: BaseException


EventName = Literal["spawn", "exit", "heartbeat-missed", "auto-restart", "restart-failed", "error"]
AnyEvent: TypeAlias = (
    SpawnEvent
    | ExitEvent
    | HeartbeatMissedEvent
    | AutoRestartEvent
    | RestartFailedEvent
    | ErrorEvent
)


class Emitter:
    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], object]]] = {}

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
                callback(event)
            except Exception:
                log.exception("a %r event callback raised", name)
