"""The events a :class:`~peepsy.protocol.Connection` reports, named as facts about what
the peer sent, and the roles of the two ends.

Separate from the connection so that a reader finds every event on one page: this is
the whole vocabulary between the protocol core and whoever drives it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from pydantic import MISSING

from peepsy._errors import InvalidResponse, RemoteProtocolError
from peepsy.protocol._generated import (
    Cancel,
    Heartbeat,
    Init,
    Ready,
    RequestLegacy,
    RequestUnified,
    Response,
    Shutdown,
)


class Role(enum.Enum):
    """Which end of a channel: the master, which starts children, or a child."""

    MASTER = "master"
    CHILD = "child"

    @property
    def peer(self) -> Role:
        """The other role."""
        return Role.CHILD if self is Role.MASTER else Role.MASTER


# --- events: facts about what the peer sent ------------------------------------------


@dataclass(slots=True)
class RequestReceived:
    """The peer asks us to run ``action``; answer with :meth:`Connection.send_response`.

    Both REQUEST shapes arrive as this one event (REQ-3); ``legacy`` says which it was.
    Absent ``data`` arrives as ``None``.
    """

    id: str
    action: str
    data: Any
    timeout: int | None
    priority: int
    legacy: bool


class ResponseReceived:
    """The answer to a request we sent (and have not forgotten).

    ``ticket`` is what the sender handed to :meth:`Connection.send_request` for this
    request: the core keeps it in its one table of outstanding requests and gives it
    back here, so the caller needs no table of its own. The members are read straight
    from the line; :attr:`response` builds the model only when asked for.
    """

    __slots__ = ("_model", "action", "data", "id", "status", "ticket")

    def __init__(
        self,
        id: str,
        status: int,
        data: Any,
        action: str,
        ticket: Any = None,
        model: Response | None = None,
    ) -> None:
        self.id = id
        self.status = status
        #: The handler's result, or MISSING when the answer carried none.
        self.data = data
        self.action = action
        self.ticket = ticket
        self._model = model

    @property
    def ok(self) -> bool:
        """Whether the status is a success (below 400)."""
        return self.status < 400

    @property
    def response(self) -> Response:
        """The RESPONSE as a model, built on first access (the hot path never needs it)."""
        model = self._model
        if model is None:
            model = self._model = _success_model(self.id, self.status, self.data)
        return model

    def __repr__(self) -> str:
        return f"ResponseReceived(id={self.id!r}, status={self.status}, action={self.action!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseReceived):
            return NotImplemented
        return (self.response, self.action, self.ticket) == (
            other.response,
            other.action,
            other.ticket,
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class UnmatchedResponse:
    """A RESPONSE whose id we are not waiting for (ID-4).

    ``late`` is true when the id is one we issued and then forgot (after a timeout): the
    answer came too late. Otherwise the peer answered a request we never sent.
    """

    response: Response
    late: bool


@dataclass(frozen=True, slots=True)
class InvalidResponseReceived:
    """An invalid RESPONSE whose id is one of our outstanding requests (MSG-9).

    That request is over: fail its caller with ``error`` now, rather than let it wait for
    its timeout. A valid answer that still comes for it is ``UnmatchedResponse`` (late).
    """

    id: str
    action: str
    error: InvalidResponse
    ticket: Any = None


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """The peer gave up its request ``id``, which we have read and not answered yet
    (CANCEL-2: a CANCEL naming anything else is no event at all). Stop it if we can
    (CANCEL-3/4); it still gets its one answer (CANCEL-5). ``reason`` is informative."""

    id: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class InitReceived:
    """The master's INIT came (a child receives it)."""

    message: Init


@dataclass(frozen=True, slots=True)
class ReadyReceived:
    """The child's READY came, answering INIT (a master receives it)."""

    message: Ready


@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """A HEARTBEAT came from the child."""

    message: Heartbeat


@dataclass(frozen=True, slots=True)
class ShutdownReceived:
    """The master's SHUTDOWN came: finish, or abandon, the work in progress and exit."""

    message: Shutdown


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A line that broke the protocol. The stream goes on with the next line.

    When ``error.request_id`` is set, the line was a REQUEST whose id survived: it is now
    owed an answer, and the receiver SHOULD send a 400 RESPONSE (REQ-7) so that the
    sender does not wait for its timeout.
    """

    error: RemoteProtocolError


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer's stream reached end of file. No event follows."""


Event: TypeAlias = (
    RequestReceived
    | ResponseReceived
    | UnmatchedResponse
    | InvalidResponseReceived
    | CancelReceived
    | InitReceived
    | ReadyReceived
    | HeartbeatReceived
    | ShutdownReceived
    | MessageRejected
    | StreamEnded
)


def _success_model(rid: str, status: int, data: Any) -> Response:
    """The model of a success answer read on the hot path, which was valid as read."""
    fields: dict[str, Any] = {"type": "RESPONSE", "id": rid, "status": status}
    if data is not MISSING:
        fields["data"] = data
    return Response.model_construct(**fields)


class Ticket(Protocol):
    """What the core keeps for a request we sent: at least its action's name."""

    action: str


class _Sent:
    """The entry of a request sent without a ticket."""

    __slots__ = ("action",)

    def __init__(self, action: str) -> None:
        self.action = action


def _ticket(sent: Ticket) -> Any:
    return None if type(sent) is _Sent else sent


def request_event(message: RequestUnified | RequestLegacy) -> RequestReceived:
    """The event of a valid REQUEST, in either shape."""
    if isinstance(message, RequestLegacy):
        body = message.request
        rid, action, data, legacy = body.id, body.action, body.data, True
    else:
        rid, action, data, legacy = message.id, message.action, message.data, False
    timeout = message.timeout
    priority = message.priority
    return RequestReceived(
        id=rid,
        action=action,
        data=None if data is MISSING else data,
        timeout=None if timeout is MISSING else timeout,
        priority=0 if priority is MISSING else priority,
        legacy=legacy,
    )


def cancel_event(message: Cancel) -> CancelReceived:
    reason = message.reason
    return CancelReceived(message.id, None if reason is MISSING else reason)


def invalid_response(exc: RemoteProtocolError, rid: str, sent: Ticket) -> InvalidResponseReceived:
    """The event of an answer to our request ``rid`` that could not be used (MSG-9): the
    line was invalid, or too long to be read at all."""
    error = InvalidResponse(
        f"the answer to {sent.action!r} (request {rid!r}) is invalid: {exc.reason}",
        line=exc.line,
        response_id=rid,
        issues=exc.issues,
    )
    error.__cause__ = exc
    return InvalidResponseReceived(rid, sent.action, error, _ticket(sent))
