"""Transports: the only code that touches pipes, processes and the event loop's I/O."""

from peepsy.transport._base import (
    BatchingWriter,
    ChannelListener,
    ChildTransport,
    Launcher,
    MasterChannel,
    SpawnSpec,
    StderrMode,
    TransportKind,
    TransportListener,
)
from peepsy.transport._memory import MemoryChannel, MemoryLauncher, MemoryTransport
from peepsy.transport._node_ipc import NodeIpcChannel, NodeIpcTransport
from peepsy.transport._process import ProcessLauncher, ProcessTransport
from peepsy.transport._ssh import SshHost, SshLauncher
from peepsy.transport._stdio import StdioChannel

__all__ = [
    "BatchingWriter",
    "ChannelListener",
    "ChildTransport",
    "Launcher",
    "MasterChannel",
    "MemoryChannel",
    "MemoryLauncher",
    "MemoryTransport",
    "NodeIpcChannel",
    "NodeIpcTransport",
    "ProcessLauncher",
    "ProcessTransport",
    "SpawnSpec",
    "SshHost",
    "SshLauncher",
    "StderrMode",
    "StdioChannel",
    "TransportKind",
    "TransportListener",
]
