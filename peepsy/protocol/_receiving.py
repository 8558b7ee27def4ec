"""The receiving half of a :class:`~peepsy.protocol.Connection`: bytes in, events out
(spec FRAME-*, MSG-6, REQ-9, RESP-*, CANCEL-2, VER-1).

Apart from the sending half so that each reads on its own page; both work on the one
state the connection keeps (its two tables of ids, the framer, what the peer stated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pydantic import MISSING

from peepsy._errors import (
    DuplicateRequestId,
    LocalProtocolError,
    RemoteProtocolError,
    UnexpectedMessage,
)
from peepsy.protocol._codec import parse
from peepsy.protocol._events import (
    CancelReceived,
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
    cancel_event,
    invalid_response,
    request_event,
)
from peepsy.protocol._framing import LineRun
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
from peepsy.protocol._hot import REFUSED as _REFUSED
from peepsy.protocol._hot import HotRequest as _HotRequest
from peepsy.protocol._hot import HotResponse as _HotResponse
from peepsy.protocol._hot import decode as _decode_hot
from peepsy.protocol._hot import read_all as _read_all
from peepsy.protocol._ids import ids_from_head
from peepsy.protocol._messages import CHILD_MESSAGE_TYPES, MASTER_MESSAGE_TYPES, Message
from peepsy.protocol._version import parse_version

if TYPE_CHECKING:
    from peepsy.protocol._framing import LineFramer

# Which message types each role may receive (MSG-6); the rest are rejected.
_ACCEPTS: Final[dict[Role, tuple[type, ...]]] = {
    Role.MASTER: CHILD_MESSAGE_TYPES,
    Role.CHILD: MASTER_MESSAGE_TYPES,
}


class Receiving:
    """The receiving methods of :class:`~peepsy.protocol.Connection`, which holds the state."""

    # The connection's state, set by its __init__; both halves use it.
    __slots__ = (
        "_ended",
        "_framer",
        "_greeted",
        "_ignored",
        "_next_id",
        "_outstanding",
        "_owed",
        "_prefix",
        "our_role",
        "peer_max_line_bytes",
        "peer_version",
    )

    our_role: Role
    peer_max_line_bytes: int
    peer_version: tuple[int, int]
    _ended: bool
    _framer: LineFramer
    _greeted: bool
    _ignored: bool
    _next_id: int
    _outstanding: dict[str, Ticket]
    _owed: set[str]
    _prefix: str

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; get the events they complete, in order.

        ``data`` may hold any part of a line or many lines; ``b""`` means the stream
        ended (a final unfinished line is then a :class:`TruncatedLine`). Garbage from
        the peer becomes a :class:`MessageRejected` event (and the answer owed, if any),
        never an exception.

        Raises:
            LocalProtocolError: called again after the end of the stream.
        """
        if self._ended:
            raise LocalProtocolError("receive_data() after the end of the stream")
        events: list[Event | None] = []
        if not data:
            self._ended = True
            events.extend(MessageRejected(err) for err in self._framer.close())
            events.append(StreamEnded())
            return events  # type: ignore[return-value]
        for item in self._framer.feed_runs(data):
            if isinstance(item, tuple):
                events.append(self._receive_line(*item))
            elif isinstance(item, LineRun):
                self._receive_run(item, events)
            else:  # a LineTooLong
                request_id, response_id = ids_from_head(item.head)
                if response_id is not None and response_id in self._outstanding:
                    # Dropped unread, but it names the request it answers: fail it now.
                    events.append(self._invalid_response(item, response_id))
                    continue
                self._owe(item, request_id)
                events.append(MessageRejected(item))
        if self._ignored:
            # Rare: only a CANCEL for nothing we owe leaves a gap, so the common read
            # pays one test per call, not per line.
            self._ignored = False
            return [event for event in events if event is not None]
        return events  # type: ignore[return-value]

    def _owe(self, exc: RemoteProtocolError, request_id: str | None) -> None:
        """Make a broken REQUEST's id owed an answer, unless that id is owed already: the
        earlier request with it gets the answer, this line none (REQ-9)."""
        if request_id is None or request_id in self._owed:
            exc.request_id = None
        else:
            exc.request_id = request_id
            self._owed.add(request_id)

    def _receive_run(self, run: LineRun, events: list[Event | None]) -> None:
        """Lines that came together: read in one pass when every one is a common
        message, else each alone, as if they had come one by one."""
        messages = _read_all(run.data)
        if messages is None:
            for number, line in self._framer.split(run):
                events.append(self._receive_line(number, line))
            return
        number = run.first
        for hot in messages:
            if isinstance(hot, _HotResponse):
                events.append(self._receive_response(hot.id, hot.status, hot.data))
            else:
                events.append(self._take_request(hot, number))
            number += 1

    def _receive_line(self, number: int, line: bytes) -> Event | None:
        try:  # _hot.read, inline: a call less per line
            hot: _HotResponse | _HotRequest | None = _decode_hot(line)
        except _REFUSED:
            hot = None
        if type(hot) is _HotResponse:
            return self._receive_response(hot.id, hot.status, hot.data)
        if isinstance(hot, _HotRequest):
            return self._take_request(hot, number)
        try:
            message = parse(line, line_number=number)
        except RemoteProtocolError as exc:
            if exc.request_id is not None:
                self._owe(exc, exc.request_id)
            elif exc.response_id is not None and exc.response_id in self._outstanding:
                return self._invalid_response(exc, exc.response_id)
            return MessageRejected(exc)
        return self._dispatch(message, number)

    def _take_request(self, hot: _HotRequest, number: int) -> Event:
        rid = hot.id
        if rid in self._owed:
            return self._duplicate(rid, number)
        self._owed.add(rid)
        # Absent members are MISSING, which the struct's types leave unsaid.
        timeout: Any = hot.timeout
        priority: Any = hot.priority
        data = hot.data
        return RequestReceived(
            rid,
            hot.action,
            None if data is MISSING else data,
            None if timeout is MISSING else timeout,
            0 if priority is MISSING else priority,
            False,
        )

    def _invalid_response(self, exc: RemoteProtocolError, rid: str) -> InvalidResponseReceived:
        return invalid_response(exc, rid, self._outstanding.pop(rid))

    def _dispatch(self, message: Message, number: int) -> Event | None:
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
        if isinstance(message, Cancel):
            return self._receive_cancel(message)
        if isinstance(message, Init):
            self._greet(message)
            return InitReceived(message)
        if isinstance(message, Shutdown):
            return ShutdownReceived(message)
        self._greet(message)
        return ReadyReceived(message)

    def _greet(self, message: Init | Ready) -> None:
        if not self._greeted:
            self._greeted = True
            limit = message.max_line_bytes
            if isinstance(limit, int):
                self.peer_max_line_bytes = limit
            # The model has checked the MAJOR.MINOR pattern (VER-1); absent is 1.0.
            self.peer_version = parse_version(message.protocol)

    def _receive_cancel(self, message: Cancel) -> CancelReceived | None:
        # CANCEL-2: for a request not read, already answered, or one of ours (the two
        # directions have separate id spaces), nothing happens at all.
        if message.id in self._owed:
            return cancel_event(message)
        self._ignored = True
        return None

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
