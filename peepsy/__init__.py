"""peepsy: typed request/response between a master process and its workers.

The wire protocol (newline-delimited JSON over a child's stdin/stdout) is specified in
docs/protocol.md and schema/; ``peepsy.protocol`` implements it without I/O.
"""

from peepsy._errors import (
    EncodeError,
    LocalProtocolError,
    PeepsyError,
    ProtocolError,
    RemoteProtocolError,
)
from peepsy.protocol import PROTOCOL_VERSION

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "EncodeError",
    "LocalProtocolError",
    "PeepsyError",
    "ProtocolError",
    "RemoteProtocolError",
    "__version__",
]
