"""The protocol state of one master-child channel, without I/O (spec ID-*, RESP-*, MSG-6).

A :class:`Connection` turns received bytes into events and outgoing messages into bytes.
It keeps two tables: the requests we sent that await a RESPONSE, and the requests we
received that we still owe one. It never reads a clock, sleeps, spawns or touches a
stream: timeouts, processes and the event loop belong to the caller.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import MISSING
from pydantic_core import to_json

from peepsy._errors import (
    DuplicateRequestId,
    LocalProtocolError,
    RemoteProtocolError,
    UnexpectedMessage,
)
from peepsy.protocol import _hot
from peepsy.protocol._codec import dumps, encode, parse
from peepsy.protocol._events import (
    Event,
    HeartbeatReceived,
    InitReceived,
    InvalidResponseReceived,
    MessageRejected,
    ReadyReceived,
    RequestReceived,
    ResponseReceived,
    Role,
    ShutdownReceived,
    StreamEnded,
    Ticket,
    UnmatchedResponse,
    _Sent,
    _success_model,
    _ticket,
    invalid_response,
    request_event,
)
from peepsy.protocol._framing import DEFAULT_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES, LineFramer
from peepsy.protocol._generated import (
    ErrorPayload,
    Heartbeat,
    Init,
    Ready,
    RequestLegacy,
    RequestUnified,
    Response,
    Shutdown,
)
from peepsy.protocol._ids import ids_from_head
from peepsy.protocol._limits import QUICK, check_outgoing, check_request
from peepsy.protocol._messages import CHILD_MESSAGE_TYPES, MASTER_MESSAGE_TYPES, Message
from peepsy.protocol._writing import (
    ACTION_JSON as _ACTION_JSON,
)
from peepsy.protocol._writing import (
    answer_line,
    checked_action_json,
    legacy_request_line,
    request_tail,
    success_line,
    too_long_answer_line,
)

# Which message types each role may receive (MSG-6); the rest are rejected.
_ACCEPTS: Final[dict[Role, tuple[type, ...]]] = {
    Role.MASTER: CHILD_MESSAGE_TYPES,
    Role.CHILD: MASTER_MESSAGE_TYPES,
}
_SENDS: Final[dict[Role, tuple[type, ...]]] = {
    Role.MASTER: (Init, Shutdown),
    Role.CHILD: (Ready, Heartbeat),
}


class Connection:
    """One side of a peepsy channel. ``receive_data(b"")`` means end of stream.

    ``peer_max_line_bytes`` is the longest line the peer reads (FRAME-11): the
    ``maxLineBytes`` of the first INIT a child receives, or of the first READY a master
    receives; until then (or when it states none), the limit given, by default our own
    ``max_line_bytes`` (at least 1 MiB): both sides of a channel set up alike agree. A
    longer REQUEST is refused (:class:`~peepsy.LineTooLongForPeer`); a longer RESPONSE is
    replaced by a 413 failure. Data nested deeper than peepsy writes, or holding a longer
    integer than a receiver reads (peepsy.protocol._limits), is refused too, with an
    :class:`~peepsy.EncodeError` that names the limit. The core keeps the one table of our
    outstanding requests, each id with the ``ticket`` its sender gave (:meth:`send_request`),
    handed back with its answer or by :meth:`forget_all`. Our ids are a role letter and a
    counter (``m1``, ``m2``, ... or ``c1``, ...): unique on this channel, cheap, and they
    let a late answer be told from a bogus one.
    """

    __slots__ = (
        "_ended",
        "_framer",
        "_greeted",
        "_next_id",
        "_outstanding",
        "_owed",
        "_prefix",
        "_prefix_json",
        "our_role",
        "peer_max_line_bytes",
    )

    def __init__(
        self,
        our_role: Role,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        id_prefix: str | None = None,
        peer_max_line_bytes: int | None = None,
    ) -> None:
        self.our_role = our_role
        # Until the peer states its limit, it is taken to read what we read (and never
        # less than the 1 MiB every receiver reads, FRAME-6).
        self.peer_max_line_bytes = (
            max(max_line_bytes, MIN_MAX_LINE_BYTES)
            if peer_max_line_bytes is None
            else peer_max_line_bytes
        )
        # Whether the peer's INIT (or READY) has come: only the first one states its limit.
        self._greeted = False
        self._framer = LineFramer(max_line_bytes)
        self._prefix = id_prefix if id_prefix is not None else our_role.value[0]
        self._prefix_json = to_json(self._prefix)[1:-1]  # escaped, without its quotes
        self._next_id = 1
        # our request id -> (action, ticket)
        self._outstanding: dict[str, Ticket] = {}
        self._owed: set[str] = set()  # ids of their requests we have not answered
        self._ended = False

    @property
    def their_role(self) -> Role:
        return self.our_role.peer

    @property
    def outstanding(self) -> int:
        """Requests we sent that await a RESPONSE."""
        return len(self._outstanding)

    @property
    def owed(self) -> frozenset[str]:
        """Ids of received requests we have not answered yet."""
        return frozenset(self._owed)

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def lines_received(self) -> int:
        return self._framer.line_number

    # --- receiving --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        if self._ended:
            raise LocalProtocolError("receive_data() after the end of the stream")
        events: list[Event] = []
        if not data:
            self._ended = True
            events.extend(MessageRejected(err) for err in self._framer.close())
            events.append(StreamEnded())
            return events
        for item in self._framer.feed(data):
            if isinstance(item, tuple):
                events.append(self._receive_line(*item))
            else:
                request_id, response_id = ids_from_head(item.head)
                if response_id is not None and response_id in self._outstanding:
                    # Dropped unread, but it names the request it answers: fail it now.
                    events.append(self._invalid_response(item, response_id))
                    continue
                self._owe(item, request_id)
                events.append(MessageRejected(item))
        return events

    def _owe(self, exc: RemoteProtocolError, request_id: str | None) -> None:
        """Make a broken REQUEST's id owed an answer, unless that id is owed already: the
        earlier request with it gets the answer, this line none (REQ-9)."""
        if request_id is None or request_id in self._owed:
            exc.request_id = None
        else:
            exc.request_id = request_id
            self._owed.add(request_id)

    def _receive_line(self, number: int, line: bytes) -> Event:
        obj = _hot.read(line)
        if obj is not None:
            kind = obj.get("type")
            if kind == "RESPONSE":
                if _hot.success_response(obj):
                    return self._receive_response(
                        obj["id"], obj["status"], obj.get("data", MISSING)
                    )
            elif kind == "REQUEST" and _hot.flat_request(obj):
                rid = obj["id"]
                if rid in self._owed:
                    return self._duplicate(rid, number)
                self._owed.add(rid)
                return RequestReceived(
                    rid,
                    obj["action"],
                    obj.get("data"),
                    obj.get("timeout"),
                    obj.get("priority", 0),
                    False,
                )
        try:
            message = parse(line, line_number=number)
        except RemoteProtocolError as exc:
            if exc.request_id is not None:
                self._owe(exc, exc.request_id)
            elif exc.response_id is not None and exc.response_id in self._outstanding:
                return self._invalid_response(exc, exc.response_id)
            return MessageRejected(exc)
        return self._dispatch(message, number)

    def _invalid_response(self, exc: RemoteProtocolError, rid: str) -> InvalidResponseReceived:
        return invalid_response(exc, rid, self._outstanding.pop(rid))

    def _dispatch(self, message: Message, number: int) -> Event:
        if not isinstance(message, _ACCEPTS[self.our_role]):
            return MessageRejected(
                UnexpectedMessage(
                    f"a {self.our_role.value} does not accept {message.type} messages",
                    line=number,
                )
            )
        # Hot messages first: a RESPONSE or a REQUEST is nearly every line.
        if isinstance(message, Response):
            return self._receive_response(message.id, message.status, message.data, message)
        if isinstance(message, RequestUnified | RequestLegacy):
            return self._receive_request(message, number)
        if isinstance(message, Heartbeat):
            return HeartbeatReceived(message)
        if isinstance(message, Init):
            self._greet(message.max_line_bytes)
            return InitReceived(message)
        if isinstance(message, Shutdown):
            return ShutdownReceived(message)
        self._greet(message.max_line_bytes)
        return ReadyReceived(message)

    def _greet(self, limit: int | MISSING) -> None:
        if not self._greeted:
            self._greeted = True
            if isinstance(limit, int):
                self.peer_max_line_bytes = limit

    def _receive_response(
        self, rid: str, status: int, data: Any, model: Response | None = None
    ) -> Event:
        sent = self._outstanding.pop(rid, None)
        if sent is None:
            if model is None:
                model = _success_model(rid, status, data)
            return UnmatchedResponse(model, late=self._issued(rid))
        ticket = None if type(sent) is _Sent else sent
        return ResponseReceived(rid, status, data, sent.action, ticket, model)

    def _receive_request(self, message: RequestUnified | RequestLegacy, number: int) -> Event:
        event = request_event(message)
        if event.id in self._owed:
            return self._duplicate(event.id, number)
        self._owed.add(event.id)
        return event

    def _duplicate(self, rid: str, number: int) -> MessageRejected:
        return MessageRejected(
            DuplicateRequestId(
                f"request id {rid!r} is already outstanding; this REQUEST is ignored",
                line=number,
            )
        )

    def _issued(self, request_id: str) -> bool:
        if not request_id.startswith(self._prefix):
            return False
        number = request_id[len(self._prefix) :]
        # Only the ids we write: ASCII digits without a leading zero ("m²" and "m01" are not).
        return (
            number.isascii()
            and number.isdigit()
            and not number.startswith("0")
            and int(number) < self._next_id
        )

    # --- sending ----------------------------------------------------------------------

    def send_request(
        self,
        action: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        priority: int | None = None,
        legacy: bool = False,
        ticket: Ticket | None = None,
    ) -> tuple[str, bytes]:
        """Start a request. Returns its id and the line to write. ``ticket`` (an object
        whose ``action`` is this action's name) is kept as the request's entry in the
        table and comes back with its answer, or from :meth:`forget_all`."""
        rid = f"{self._prefix}{self._next_id}"
        if legacy:
            line = legacy_request_line(rid, action, data, timeout, priority)
        else:
            # The hot path writes the line directly: the same bytes as the model would
            # (a property test holds them equal), without building and validating one.
            # An action that is not a string (unhashable, even) is refused as a name.
            cached = _ACTION_JSON.get(action) if type(action) is str else None
            action_json = cached or checked_action_json(action)
            tail = request_tail(action, timeout, priority)
            line = b"".join(
                (
                    b'{"type":"REQUEST","id":"',
                    self._prefix_json,
                    str(self._next_id).encode(),
                    b'","action":',
                    action_json,
                    b',"data":',
                    dumps(data, "REQUEST"),
                    tail,
                )
            )
        size = len(line)
        if size > QUICK or size > self.peer_max_line_bytes:
            check_request(line, action, self.peer_max_line_bytes)
        self._next_id += 1
        self._outstanding[rid] = _Sent(action) if ticket is None else ticket
        return rid, line

    def forget(self, request_id: str) -> bool:
        """Stop waiting for a request (it timed out or was cancelled).

        A RESPONSE that still arrives becomes :class:`UnmatchedResponse` with ``late``.
        Returns whether the id was outstanding.
        """
        return self._outstanding.pop(request_id, None) is not None

    def forget_all(self) -> list[Any]:
        """Stop waiting for every outstanding request (the channel is gone); returns
        their tickets, in the order they were sent."""
        tickets = [_ticket(sent) for sent in self._outstanding.values()]
        self._outstanding.clear()
        return tickets

    def send_response(
        self,
        request_id: str,
        status: int,
        data: Any = None,
        *,
        error: str | None = None,
        error_payload: ErrorPayload | None = None,
    ) -> bytes:
        """Answer a received request exactly once (RESP-1).

        A success (status < 400) carries ``data`` and no error; a failure carries no
        ``data``, the legacy ``error`` string (taken from the payload when not given,
        RESP-3) and the optional structured ``error_payload``.
        """
        if request_id not in self._owed:
            raise LocalProtocolError(f"no received request {request_id!r} awaits an answer")
        if status == 200 and error is None and error_payload is None:
            # The hot path, written directly (see send_request).
            line = success_line(request_id, data)
        else:
            line = answer_line(request_id, status, data, error, error_payload)
        size = len(line)
        if size > self.peer_max_line_bytes:
            line = too_long_answer_line(request_id, size, self.peer_max_line_bytes)
        elif size > QUICK:
            check_outgoing(line, f"RESPONSE to {request_id!r}")
        self._owed.discard(request_id)
        return line

    def send(self, message: Init | Ready | Heartbeat | Shutdown) -> bytes:
        """Write a message that is neither a request nor a response (INIT, READY,
        HEARTBEAT, SHUTDOWN), checking that our role may send it (MSG-6)."""
        if not isinstance(message, _SENDS[self.our_role]):
            raise LocalProtocolError(f"a {self.our_role.value} does not send {message.type}")
        return encode(message)
