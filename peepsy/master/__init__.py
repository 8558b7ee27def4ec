"""The reference master implementation."""

from peepsy.master._events import (
    AutoRestartEvent,
    ErrorEvent,
    EventName,
    ExitEvent,
    HeartbeatMissedEvent,
    RearmEvent,
    RecoveredEvent,
    ReplacedEvent,
    RestartFailedEvent,
    SpawnEvent,
    StalledEvent,
    StuckEvent,
)
from peepsy.master._fanout import OnError
from peepsy.master._master import Master, Mode, RequestShape
from peepsy.master._stats import GroupStats, ProcessStats, ProcessStatus, Reply, Strategy
from peepsy.master._stuck import OnStuck

__all__ = [
    "AutoRestartEvent",
    "ErrorEvent",
    "EventName",
    "ExitEvent",
    "GroupStats",
    "HeartbeatMissedEvent",
    "Master",
    "Mode",
    "OnError",
    "OnStuck",
    "ProcessStats",
    "ProcessStatus",
    "RearmEvent",
    "RecoveredEvent",
    "ReplacedEvent",
    "Reply",
    "RequestShape",
    "RestartFailedEvent",
    "SpawnEvent",
    "StalledEvent",
    "Strategy",
    "StuckEvent",
]
