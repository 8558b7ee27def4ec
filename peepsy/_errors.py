"""The peepsy exception tree.

    PeepsyError                       code PEEPSY_ERROR
    └── ProtocolError                 code PEEPSY_PROTOCOL: a message broke docs/protocol.md
        ├── LocalProtocolError        we were about to send something invalid (our bug)
        │   ├── EncodeError           a value could not be written as JSON
        │   └── LineTooLongForPeer    a REQUEST longer than the peer's stated line limit
        └── RemoteProtocolError       the peer sent something invalid (its bug)
            ├── LineTooLong           a line exceeded the receiver's maximum length
            ├── TruncatedLine         the stream ended inside a line
            ├── InvalidJson           the line is not UTF-8 JSON (RFC 8259)
            ├── InvalidMessage        JSON, but not a valid peepsy envelope
            │   └── UnknownMessageType  an object whose ``type`` this version does not know
            ├── UnexpectedMessage     valid, but not one the receiving role accepts
            ├── DuplicateRequestId    a REQUEST reused an id that is still outstanding
            └── InvalidResponse       the answer to one of our requests was invalid

Each exception has a stable ``code``. Remote errors say where (``line`` number, JSON path
of each ``issues`` entry) and, when the bad line still names one, the ``request_id`` it
belonged to, so the receiver can answer it instead of leaving the sender waiting; a bad
RESPONSE line's string id is kept as ``response_id``, so the request it answers can fail
at once.
"""

from __future__ import annotations

from dataclasses import dataclass


class PeepsyError(Exception):
    """Base class of every error peepsy raises."""

    code: str = "PEEPSY_ERROR"


class ProtocolError(PeepsyError):
    """A message broke the protocol (docs/protocol.md)."""

    code = "PEEPSY_PROTOCOL"


class LocalProtocolError(ProtocolError):
    """This side tried to send something the protocol does not allow."""

    code = "PEEPSY_LOCAL_PROTOCOL"


class EncodeError(LocalProtocolError):
    """A value handed to peepsy cannot be written as JSON."""

    code = "PEEPSY_ENCODE"


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
    code = "PEEPSY_TRUNCATED_LINE"
    rule = "FRAME-2"


class InvalidJson(RemoteProtocolError):
    code = "PEEPSY_INVALID_JSON"
    rule = "FRAME-3"


class InvalidMessage(RemoteProtocolError):
    code = "PEEPSY_INVALID_MESSAGE"
    rule = "MSG-2"


class UnknownMessageType(InvalidMessage):
    code = "PEEPSY_UNKNOWN_TYPE"
    rule = "MSG-5"


class UnexpectedMessage(RemoteProtocolError):
    code = "PEEPSY_UNEXPECTED_MESSAGE"
    rule = "MSG-6"


class DuplicateRequestId(RemoteProtocolError):
    code = "PEEPSY_DUPLICATE_ID"
    rule = "ID-2"


class InvalidResponse(RemoteProtocolError):
    """The peer answered one of our requests with an invalid RESPONSE; the request fails
    at once instead of waiting for its timeout (MSG-9). ``issues`` say what was wrong."""

    code = "PEEPSY_INVALID_RESPONSE"
    rule = "MSG-9"
