"""peepsy: typed request/response between a master process and its worker processes.

Workers ("children") are any executables that speak the peepsy protocol, newline-
delimited JSON on their stdin and stdout (docs/protocol.md, schema/). This package is
the Python reference: :class:`Master` spawns and supervises children, :class:`Child`
is a worker, :class:`Action` types an action's request and response, and
``peepsy.protocol`` is the protocol itself, without I/O.

Names are imported on first use, so ``import peepsy.protocol`` alone loads no event
loop, process or thread machinery. ``peepsy.sync`` is the blocking API for scripts: a
``Master`` that needs no event loop, and an ``Executor`` that runs plain functions.

Every error derives from :class:`PeepsyError` and has a stable ``code``; the tree is drawn
in peepsy._errors' docstring and in docs/guide.md ("Errors").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Even the errors load on first use: the pytest plugin (peepsy.pytest_plugin) is imported
# by every pytest run where peepsy is installed, and must not cost those runs pydantic.
if TYPE_CHECKING:
    from peepsy._actions import Action
    from peepsy._errors import (
        EncodeError,
        HandlerError,
        LocalProtocolError,
        PeepsyCancelledError,
        PeepsyError,
        PeepsyNotFoundError,
        PeepsyProcessError,
        PeepsyShutdownError,
        PeepsySshError,
        PeepsyTimeoutError,
        PeepsyValidationError,
        ProtocolError,
        RemoteError,
        RemoteProtocolError,
        RemoteTraceback,
    )
    from peepsy._failures import error_from_wire, error_to_wire
    from peepsy.child import Child
    from peepsy.master import (
        AutoRestartEvent,
        ErrorEvent,
        ExitEvent,
        GroupStats,
        HeartbeatMissedEvent,
        Master,
        ProcessStats,
        RearmEvent,
        RecoveredEvent,
        ReplacedEvent,
        Reply,
        RestartFailedEvent,
        SpawnEvent,
        StalledEvent,
        StuckEvent,
    )
    from peepsy.protocol import PROTOCOL_VERSION
    from peepsy.session._context import RequestContext, current_request
    from peepsy.transport import SshHost

__version__ = "0.1.0"

_LAZY = {
    "EncodeError": "peepsy._errors",
    "HandlerError": "peepsy._errors",
    "LocalProtocolError": "peepsy._errors",
    "PeepsyCancelledError": "peepsy._errors",
    "PeepsyError": "peepsy._errors",
    "PeepsyNotFoundError": "peepsy._errors",
    "PeepsyProcessError": "peepsy._errors",
    "PeepsyShutdownError": "peepsy._errors",
    "PeepsySshError": "peepsy._errors",
    "PeepsyTimeoutError": "peepsy._errors",
    "PeepsyValidationError": "peepsy._errors",
    "ProtocolError": "peepsy._errors",
    "RemoteError": "peepsy._errors",
    "RemoteProtocolError": "peepsy._errors",
    "RemoteTraceback": "peepsy._errors",
    "PROTOCOL_VERSION": "peepsy.protocol",
    "Action": "peepsy._actions",
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
    "RearmEvent": "peepsy.master",
    "RecoveredEvent": "peepsy.master",
    "ReplacedEvent": "peepsy.master",
    "Reply": "peepsy.master",
    "RestartFailedEvent": "peepsy.master",
    "SpawnEvent": "peepsy.master",
    "StalledEvent": "peepsy.master",
    "StuckEvent": "peepsy.master",
    "RequestContext": "peepsy.session._context",
    "current_request": "peepsy.session._context",
    "SshHost": "peepsy.transport",
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
    "PeepsyCancelledError",
    "PeepsyError",
    "PeepsyNotFoundError",
    "PeepsyProcessError",
    "PeepsyShutdownError",
    "PeepsySshError",
    "PeepsyTimeoutError",
    "PeepsyValidationError",
    "ProcessStats",
    "ProtocolError",
    "RearmEvent",
    "RecoveredEvent",
    "RemoteError",
    "RemoteProtocolError",
    "RemoteTraceback",
    "ReplacedEvent",
    "Reply",
    "RequestContext",
    "RestartFailedEvent",
    "SpawnEvent",
    "SshHost",
    "StalledEvent",
    "StuckEvent",
    "__version__",
    "current_request",
    "error_from_wire",
    "error_to_wire",
]
