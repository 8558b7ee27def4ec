"""The reference master implementation."""

from peepsy.master._events import (
    AutoRestartEvent,
    ErrorEvent,
    EventName,
    ExitEvent,
    HeartbeatMissedEvent,
    RearmEvent,
    RecoveredEvent,
    RestartFailedEvent,
    SpawnEvent,
    StalledEvent,
)
from peepsy.master._master import Master, Mode, RequestShape
from peepsy.master._stats import GroupStats, ProcessStats, ProcessStatus, Reply, Strategy

__all__ = [
    "AutoRestartEvent",
    "ErrorEvent",
    "EventName",
    "ExitEvent",
    "GroupStats",
    "HeartbeatMissedEvent",
    "Master",
    "Mode",
    "ProcessStats",
    "ProcessStatus",
    "RearmEvent",
    "RecoveredEvent",
    "Reply",
    "RequestShape",
    "RestartFailedEvent",
    "SpawnEvent",
    "StalledEvent",
    "Strategy",
]
