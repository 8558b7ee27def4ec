"""The protocol state of one master-child channel, without I/O (spec ID-*, RESP-*, MSG-6).

A :class:`Connection` turns received bytes into events and outgoing messages into bytes.
It keeps two tables: the requests we sent that await a RESPONSE, and the requests we
received that we still owe one. It never reads a clock, sleeps, spawns or touches a
stream: timeouts, processes and the event loop belong to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic_core import to_json

from peepsy._errors import LocalProtocolError
from peepsy.protocol._codec import dumps, encode
from peepsy.protocol._events import Role, Ticket, _Sent, _ticket
from peepsy.protocol._framing import DEFAULT_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES, LineFramer
from peepsy.protocol._generated import ErrorPayload, Heartbeat, Init, Ready, Shutdown
from peepsy.protocol._limits import QUICK, check_outgoing, check_request
from peepsy.protocol._receiving import Receiving
from peepsy.protocol._version import CANCEL_SINCE
from peepsy.protocol._writing import (
    ACTION_JSON as _ACTION_JSON,
)
from peepsy.protocol._writing import (
    TIMEOUT_TAILS,
    answer_line,
    cancel_line,
    checked_action_json,
    legacy_request_line,
    request_tail,
    success_line,
    too_long_answer_line,
)

_SENDS: Final[dict[Role, tuple[type, ...]]] = {
    Role.MASTER: (Init, Shutdown),
    Role.CHILD: (Ready, Heartbeat),
}


class Connection(Receiving):
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

    ``peer_version`` is the protocol the peer stated in that same first INIT (or READY),
    ``(1, 0)`` until then or when it states none (VER-1); ``peer_cancels`` says whether it
    may be sent CANCEL (CANCEL-1), which :meth:`send_cancel` writes. A CANCEL received
    for a request we owe an answer is :class:`~peepsy.protocol.CancelReceived`; any other
    is no event at all (CANCEL-2).
    """

    __slots__ = ("_prefix_json", "pending")  # the rest is declared with the receiving half

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
        self.peer_version = (1, 0)
        # Whether a CANCEL for nothing we owe (CANCEL-2) left a gap among the events.
        self._ignored = False
        self._framer = LineFramer(max_line_bytes)
        self._prefix = id_prefix if id_prefix is not None else our_role.value[0]
        self._prefix_json = to_json(self._prefix)[1:-1]  # escaped, without its quotes
        self._next_id = 1
        # our request id -> (action, ticket)
        self._outstanding: dict[str, Ticket] = {}
        #: The same table, read-only: ``len(conn.pending)`` is :attr:`outstanding` without
        #: a Python call (a group's least-busy scan reads it for every member, per request).
        self.pending: Mapping[str, Ticket] = MappingProxyType(self._outstanding)
        self._owed: set[str] = set()  # ids of their requests we have not answered
        self._ended = False

    @property
    def their_role(self) -> Role:
        """The peer's role: the opposite of ``our_role``."""
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
    def peer_cancels(self) -> bool:
        """Whether the peer stated a protocol that has CANCEL (1.1 or later, CANCEL-1)."""
        return self.peer_version >= CANCEL_SINCE

    @property
    def ended(self) -> bool:
        """Whether the peer's stream has ended (``receive_data(b"")`` was called)."""
        return self._ended

    @property
    def lines_received(self) -> int:
        """How many whole lines have been received so far."""
        return self._framer.line_number

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
            # request_tail's cache, read here for the common case: a call less per request.
            tail = None
            if priority is None and type(timeout) is int:
                tail = TIMEOUT_TAILS.get(timeout)
            if tail is None:
                tail = request_tail(action, timeout, priority)
            line = b'{"type":"REQUEST","id":"%b%d","action":%b,"data":%b%b' % (
                self._prefix_json,
                self._next_id,
                action_json,
                dumps(data, "REQUEST"),
                tail,
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

    def send_cancel(self, request_id: str, reason: str | None = None) -> bytes:
        """Write a CANCEL for our request ``request_id`` (CANCEL-1): one we sent, and
        whose answer we gave up waiting for (:meth:`forget`) or still wait for. Whether
        the peer may be sent one is the caller's test (:attr:`peer_cancels`). ``reason``
        (1..256 characters) is informative: ``"timeout"``, ``"cancelled"``, ``"shutdown"``.
        """
        if not self._issued(request_id):
            raise LocalProtocolError(f"CANCEL for {request_id!r}, a request this side never sent")
        return cancel_line(request_id, reason)

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
