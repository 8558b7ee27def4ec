"""The protocol's own errors, drawn in peepsy._errors' tree with the rest and imported
from there: a message one side tried to send or received that breaks docs/protocol.md,
and :class:`Issue`, one thing wrong with a received message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from peepsy._errors import PeepsyError

if TYPE_CHECKING:
    pass


class ProtocolError(PeepsyError):
    """A message broke the protocol (docs/protocol.md)."""

    code = "PEEPSY_PROTOCOL"


class LocalProtocolError(ProtocolError):
    """This side tried to send something the protocol does not allow."""

    code = "PEEPSY_LOCAL_PROTOCOL"


class EncodeError(LocalProtocolError):
    """A value handed to peepsy cannot be written as JSON."""

    code = "PEEPSY_ENCODE"


class NestingTooDeepForPeer(EncodeError):
    """A value would be inside more than ``limit`` containers, deeper than peepsy writes
    (and so than a receiver is known to read, FRAME-13). It was not sent."""

    code = "PEEPSY_NESTING_TOO_DEEP"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class NumberTooLongForPeer(EncodeError):
    """A message would hold an integer of more than ``limit`` digits, which a receiver
    does not read (FRAME-3). It was not sent."""

    code = "PEEPSY_NUMBER_TOO_LONG"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class LineTooLongForPeer(LocalProtocolError):
    """A REQUEST would be longer than the line limit the peer stated (FRAME-11); it was
    not sent."""

    code = "PEEPSY_LINE_TOO_LONG"

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with a received message: where (a JSON path such as ``$.request.id``)
    and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""

    code = "PEEPSY_REMOTE_PROTOCOL"
    #: The requirement of docs/protocol.md that the input broke.
    rule: str = "MSG-1"

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        request_id: str | None = None,
        response_id: str | None = None,
        issues: tuple[Issue, ...] = (),
    ) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(where + message)
        self.reason = message
        self.line = line
        self.request_id = request_id
        self.response_id = response_id
        self.issues = issues


class LineTooLong(RemoteProtocolError):
    """A line over the receiver's limit, dropped whole. ``head`` holds its first bytes,
    from which the id of an over-long REQUEST may still be read (FRAME-12)."""

    code = "PEEPSY_LINE_TOO_LONG"
    rule = "FRAME-6"

    def __init__(self, message: str, *, line: int | None = None, head: bytes = b"") -> None:
        super().__init__(message, line=line)
        self.head = head


class TruncatedLine(RemoteProtocolError):
    """The stream ended inside a line: bytes after the last newline (FRAME-2)."""

    code = "PEEPSY_TRUNCATED_LINE"
    rule = "FRAME-2"


class InvalidJson(RemoteProtocolError):
    """A line is not one JSON object (FRAME-3)."""

    code = "PEEPSY_INVALID_JSON"
    rule = "FRAME-3"


class InvalidMessage(RemoteProtocolError):
    """A JSON object that is not a valid message: a field missing or of the wrong type
    (MSG-2)."""

    code = "PEEPSY_INVALID_MESSAGE"
    rule = "MSG-2"


class UnknownMessageType(InvalidMessage):
    """A message whose ``type`` the protocol does not know (MSG-5)."""

    code = "PEEPSY_UNKNOWN_TYPE"
    rule = "MSG-5"


class UnexpectedMessage(RemoteProtocolError):
    """A valid message the peer's role may not send, or not now (MSG-6): a RESPONSE from
    a master, say."""

    code = "PEEPSY_UNEXPECTED_MESSAGE"
    rule = "MSG-6"


class DuplicateRequestId(RemoteProtocolError):
    """A REQUEST reusing the id of one still in progress (ID-2)."""

    code = "PEEPSY_DUPLICATE_ID"
    rule = "ID-2"


class InvalidResponse(RemoteProtocolError):
    """The peer answered one of our requests with an invalid RESPONSE; the request fails
    at once instead of waiting for its timeout (MSG-9). ``issues`` say what was wrong."""

    code = "PEEPSY_INVALID_RESPONSE"
    rule = "MSG-9"
