"""peepsy: typed request/response between a master process and its worker processes.

Workers ("children") are any executables that speak the peepsy protocol, newline-
delimited JSON on their stdin and stdout (docs/protocol.md, schema/). This package is
the Python reference: :class:`Master` spawns and supervises children, :class:`Child`
is a worker, :class:`Action` types an action's request and response, and
``peepsy.protocol`` is the protocol itself, without I/O.

Names are imported on first use, so ``import peepsy.protocol`` alone loads no event
loop, process or thread machinery.

Errors::

    PeepsyError                    every error peepsy raises (``.code`` is stable)
    ├── PeepsyTimeoutError         no answer in time              PEEPSY_TIMEOUT
    ├── PeepsyProcessError         a child died / is not running  PEEPSY_PROCESS
    ├── PeepsyNotFoundError        no such target or group        PEEPSY_NOT_FOUND
    ├── PeepsyValidationError      data does not fit an Action    PEEPSY_VALIDATION
    ├── PeepsyShutdownError        refused while shutting down    PEEPSY_SHUTTING_DOWN
    ├── RemoteError                the peer answered status >= 400 PEEPSY_REMOTE
    ├── HandlerError               raise it in a handler to pick status/code/details
    └── ProtocolError              a message broke the protocol   PEEPSY_PROTOCOL
        ├── LocalProtocolError     ... on our side (EncodeError: not JSON-serializable)
        └── RemoteProtocolError    ... on the peer's side (see peepsy.protocol)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from peepsy._errors import (
    EncodeError,
    LocalProtocolError,
    PeepsyError,
    ProtocolError,
    RemoteProtocolError,
)
from peepsy.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from peepsy._actions import Action
    from peepsy._failures import (
        HandlerError,
        PeepsyNotFoundError,
        PeepsyProcessError,
        PeepsyShutdownError,
        PeepsyTimeoutError,
        PeepsyValidationError,
        RemoteError,
        error_from_wire,
        error_to_wire,
    )
    from peepsy.child import Child
    from peepsy.master import (
        AutoRestartEvent,
        ErrorEvent,
        ExitEvent,
        GroupStats,
        HeartbeatMissedEvent,
        Master,
        ProcessStats,
        Reply,
        RestartFailedEvent,
        SpawnEvent,
    )

__version__ = "0.1.0"

_LAZY = {
    "Action": "peepsy._actions",
    "HandlerError": "peepsy._failures",
    "PeepsyNotFoundError": "peepsy._failures",
    "PeepsyProcessError": "peepsy._failures",
    "PeepsyShutdownError": "peepsy._failures",
    "PeepsyTimeoutError": "peepsy._failures",
    "PeepsyValidationError": "peepsy._failures",
    "RemoteError": "peepsy._failures",
    "error_from_wire": "peepsy._failures",
    "error_to_wire": "peepsy._failures",
    "Child": "peepsy.child",
    "AutoRestartEvent": "peepsy.master",
    "ErrorEvent": "peepsy.master",
    "ExitEvent": "peepsy.master",
    "GroupStats": "peepsy.master",
    "HeartbeatMissedEvent": "peepsy.master",
    "Master": "peepsy.master",
    "ProcessStats": "peepsy.master",
    "Reply": "peepsy.master",
    "RestartFailedEvent": "peepsy.master",
    "SpawnEvent": "peepsy.master",
}


if not TYPE_CHECKING:
    # Hidden from type checkers, which then see only the names imported above and flag
    # a misspelt one instead of typing it Any.

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'peepsy' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(__all__)


__all__ = [
    "PROTOCOL_VERSION",
    "Action",
    "AutoRestartEvent",
    "Child",
    "EncodeError",
    "ErrorEvent",
    "ExitEvent",
    "GroupStats",
    "HandlerError",
    "HeartbeatMissedEvent",
    "LocalProtocolError",
    "Master",
    "PeepsyError",
    "PeepsyNotFoundError",
    "PeepsyProcessError",
    "PeepsyShutdownError",
    "PeepsyTimeoutError",
    "PeepsyValidationError",
    "ProcessStats",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "Reply",
    "RestartFailedEvent",
    "SpawnEvent",
    "__version__",
    "error_from_wire",
    "error_to_wire",
]
