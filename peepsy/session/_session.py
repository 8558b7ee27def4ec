"""One side of one channel, with its runtime: what the master (once per child) and the
child both do.

A :class:`Session` owns the protocol :class:`~peepsy.protocol.Connection` of a channel
and adds what needs an event loop: the calls we make (each a :class:`Call`, a future that
settles exactly once: answer, invalid answer, timeout, withdrawal or loss of the
channel), the deadlines of those calls, the writer that sends the answers produced
while one read is handled in a single write, and the serving path for the peer's
requests (a :class:`~peepsy.session.Server`). What is not a request or an answer goes to
a :class:`SessionListener`: that is where master and child differ.

A call given up on (its timeout, its caller's cancellation, :meth:`Session.cancel_all`)
is cancelled at the peer too when the peer speaks 1.1 (CANCEL-1): the session writes the
CANCEL and remembers the id until its answer comes, which then acknowledges the
cancellation (CANCEL-5) instead of being a late answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, Protocol, overload

from peepsy._errors import (
    EncodeError,
    InvalidResponse,
    PeepsyCancelledError,
    PeepsyError,
    PeepsyTimeoutError,
    RemoteProtocolError,
)
from peepsy._failures import bare_payload, error_to_wire
from peepsy.protocol import (
    CancelReceived,
    Connection,
    Event,
    InvalidResponseReceived,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    UnmatchedResponse,
)
from peepsy.session._call import C, Call, Slot
from peepsy.session._deadlines import Deadlines, clock_of
from peepsy.session._serving import Server


class SessionListener(Protocol):
    """What a session reports to the side that owns it."""

    def answered(self, call: Call[Any], status: int) -> None:
        """``call`` got its answer (any status; an invalid answer is :meth:`rejected`)."""

    def timed_out(self, call: Call[Any]) -> None:
        """``call`` got no answer within its timeout."""

    def rejected(self, error: RemoteProtocolError) -> None:
        """The peer sent a line that broke the protocol (already answered if it could be)."""

    def late(self, event: UnmatchedResponse) -> None:
        """An answer to a request we had given up on."""

    def lifecycle(self, event: Event) -> None:
        """INIT, READY, HEARTBEAT, SHUTDOWN, or the end of the peer's stream."""

    def cancel_sent(self, call: Call[Any], reason: str) -> None:
        """A CANCEL was written for ``call`` (given up on for ``reason``: ``"timeout"``,
        ``"cancelled"`` or ``"shutdown"``); its answer is still to come (CANCEL-5)."""

    def cancel_acknowledged(self, request_id: str, status: int) -> None:
        """The answer to a request we cancelled came (499 if it stopped, else the
        status of its own answer, CANCEL-4): the peer is done with it."""


#: How many cancelled ids a session remembers while their answers are due; past it the
#: oldest is forgotten (its answer, if it ever comes, is then only a late one).
MAX_CANCELLED: Final = 10_000


class Session:
    """See the module docstring. ``peer`` names the other side in error texts (a
    child's target, or ``"master"``)."""

    __slots__ = (
        "_batch",
        "_cancelled",
        "_clock",
        "_deadlines",
        "_held",
        "_include_stack",
        "_listener",
        "_loop",
        "_write",
        "conn",
        "legacy",
        "peer",
        "server",
    )

    def __init__(
        self,
        conn: Connection,
        write: Callable[[bytes], None] | None,
        loop: asyncio.AbstractEventLoop,
        deadlines: Deadlines[Call[Any]],
        listener: SessionListener,
        server_factory: Callable[[Session], Server],
        *,
        peer: str,
        include_stack: bool = False,
        legacy: bool = False,
    ) -> None:
        self.conn = conn
        self._held: list[bytes] = []
        self._write = self._held.append if write is None else write
        self._loop = loop
        self._clock = clock_of(loop)  # loop.time, read without a call where it can be
        self._deadlines = deadlines
        self._listener = listener
        self._include_stack = include_stack
        self._batch: list[bytes] | None = None
        # Ids we sent a CANCEL for, until their answer comes (CANCEL-5).
        self._cancelled: dict[str, None] = {}
        self.peer = peer
        self.legacy = legacy
        self.server = server_factory(self)

    @property
    def outstanding(self) -> int:
        """Calls we made that await their answer."""
        return self.conn.outstanding

    # --- writing ----------------------------------------------------------------------

    def bind(self, write: Callable[[bytes], None]) -> None:
        """Write from now on with ``write``, after what was held until now: a master
        makes a child's session (with no writer) before the process is up, so that
        nothing the child says first is lost, and binds it once the process's input
        exists."""
        held, self._held = self._held, []
        self._write = write
        if held:
            write(b"".join(held))

    def write(self, line: bytes) -> None:
        """Send one encoded line, batched with the others of the current batch if one is open."""
        batch = self._batch
        if batch is not None:
            batch.append(line)
        else:
            self._write(line)

    # --- calls we make ----------------------------------------------------------------

    @overload
    def call(
        self,
        action: str,
        data: Any,
        *,
        timeout: int,
        priority: int | None = ...,
        started: float | None = ...,
        slot: Slot | None = ...,
    ) -> Call[ResponseReceived]: ...
    @overload
    def call(
        self,
        action: str,
        data: Any,
        *,
        timeout: int,
        priority: int | None = ...,
        started: float | None = ...,
        slot: Slot | None = ...,
        kind: type[C],
    ) -> C: ...
    def call(
        self,
        action: str,
        data: Any,
        *,
        timeout: int,
        priority: int | None = None,
        started: float | None = None,
        slot: Slot | None = None,
        kind: type[Call[Any]] = Call,
    ) -> Call[Any]:
        """Send a request; the returned call (a future, of class ``kind``) settles once.
        ``started`` (loop time) is when the caller's timeout began, if before now (time
        spent waiting for capacity counts); the REQUEST states what is left of it."""
        loop = self._loop
        if started is None:
            began = self._clock()
            remaining = timeout
        else:
            began = started
            remaining = max(1, timeout - int((self._clock() - began) * 1000))
        call = kind(loop, self, action, timeout, began, slot)
        call.id, line = self.conn.send_request(
            action, data, timeout=remaining, priority=priority, legacy=self.legacy, ticket=call
        )
        self._deadlines.add(call, began + timeout / 1000)  # call.deadline, computed here
        batch = self._batch  # self.write, inline: a call less per request
        if batch is not None:
            batch.append(line)
        else:
            self._write(line)
        return call

    def _settle(self, call: Call[Any]) -> None:
        self._deadlines.discard(call)  # nothing of an answered call waits for its deadline
        slot = call.slot
        if slot is not None:
            call.slot = None
            slot.release()

    def expire(self, call: Call[Any]) -> None:
        """The deadline wheel's callback: fail ``call``, which is still unanswered."""
        if not self.conn.forget(call.id):  # pragma: no cover - settled calls leave the wheel
            return
        self._settle(call)
        self._listener.timed_out(call)
        if not call.done():
            call.set_exception(
                PeepsyTimeoutError(
                    f"Request timed out after {call.timeout}ms for target: {self.peer}",
                    action=call.action,
                    target=self.peer,
                    timeout_ms=call.timeout,
                )
            )
        if self.conn.peer_cancels:
            self._send_cancel(call, "timeout")

    def withdraw(self, call: Call[Any]) -> None:
        """The caller gave up ``call`` (its task was cancelled): forget it, release what
        it holds, and cancel it at the peer if the peer can be told (CANCEL-1)."""
        if self.conn.forget(call.id):
            self._settle(call)
            if self.conn.peer_cancels:
                self._send_cancel(call, "cancelled")

    def cancel_all(self, reason: str) -> int:
        """Give up every call still waiting, and send a CANCEL for each (for a shutdown
        whose deadline passed, ``reason`` ``"shutdown"``): each caller gets
        :class:`~peepsy.PeepsyCancelledError` now, and the answers that still come
        acknowledge the cancellations. Nothing happens on a channel whose peer cannot be
        told (a 1.0 peer): its calls wait for their answers or for the channel's end.
        Returns how many were cancelled."""
        if not self.conn.peer_cancels:
            return 0
        calls = self.conn.forget_all()
        for call in calls:
            self._settle(call)
            if not call.done():
                call.set_exception(
                    PeepsyCancelledError(
                        f"request {call.id!r} for {call.action!r} to {self.peer} was "
                        f"cancelled ({reason})",
                        action=call.action,
                        target=self.peer,
                        reason=reason,
                    )
                )
            self._send_cancel(call, reason)
        return len(calls)

    def _send_cancel(self, call: Call[Any], reason: str) -> None:
        cancelled = self._cancelled
        if len(cancelled) >= MAX_CANCELLED:
            del cancelled[next(iter(cancelled))]
        cancelled[call.id] = None
        self.write(self.conn.send_cancel(call.id, reason))
        self._listener.cancel_sent(call, reason)

    @property
    def cancelled(self) -> frozenset[str]:
        """Ids of requests we cancelled whose answer has not come yet."""
        return frozenset(self._cancelled)

    def fail_all(self, error: Callable[[Call[Any]], PeepsyError]) -> int:
        """The channel is gone: fail every call still waiting with ``error(call)``.
        Returns how many there were."""
        calls = self.conn.forget_all()
        self._cancelled.clear()  # no answer comes any more
        for call in calls:
            self._settle(call)
            if not call.done():
                call.set_exception(error(call))
        return len(calls)

    # --- receiving --------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Handle bytes from the peer. Answers produced meanwhile leave in one write."""
        batch = self._batch = []
        try:
            for event in self.conn.receive_data(data):
                kind = type(event)
                if kind is ResponseReceived:
                    self._answered(event)  # type: ignore[arg-type]
                elif kind is RequestReceived:
                    self.server.accept(event)  # type: ignore[arg-type]
                else:
                    self._other(event)
        finally:
            self._batch = None
            if batch:
                self._write(batch[0] if len(batch) == 1 else b"".join(batch))

    def take_unsent(self) -> bytes:
        """The answers of the read being handled, not written yet, taken so that the read
        will not write them: for a last flush from another thread while a handler holds
        the event loop (the child's end-of-input watchdog)."""
        batch = self._batch
        if not batch:
            return b""
        lines = b"".join(batch)
        batch.clear()
        return lines

    def end(self) -> None:
        """The peer's stream ended."""
        for event in self.conn.receive_data(b""):
            self._other(event)

    def _answered(self, event: ResponseReceived) -> None:
        call: Call[Any] = event.ticket
        self._settle(call)
        self._listener.answered(call, event.status)
        if not call.done():
            call.settle(event)

    def _other(self, event: Event) -> None:
        if isinstance(event, MessageRejected):
            error = event.error
            if error.request_id is not None:  # REQ-7: answered, not left to time out
                self.respond(error.request_id, None, error, False)
            self._listener.rejected(error)
        elif isinstance(event, InvalidResponseReceived):
            self._invalid_answer(event.ticket, event.error)
        elif isinstance(event, CancelReceived):
            self.server.cancel(event.id, event.reason)
        elif isinstance(event, UnmatchedResponse):
            if event.late:
                self._late(event)
            else:
                rid = event.response.id
                self._listener.rejected(
                    RemoteProtocolError(f"answer to a request never sent: {rid!r}")
                )
        else:
            self._listener.lifecycle(event)

    def _late(self, event: UnmatchedResponse) -> None:
        response = event.response
        rid = response.id
        if rid in self._cancelled:
            # CANCEL-5: not a late answer, but the end of what we cancelled.
            del self._cancelled[rid]
            self._listener.cancel_acknowledged(rid, response.status)
        else:
            self._listener.late(event)

    def _invalid_answer(self, call: Call[Any], error: InvalidResponse) -> None:
        # MSG-9: the peer answered, wrongly; the caller learns it now, not at its timeout.
        self._settle(call)
        self._listener.rejected(error)
        if not call.done():
            call.set_exception(error)

    # --- answering --------------------------------------------------------------------

    def respond(self, request_id: str, result: Any, error: BaseException | None, ran: bool) -> None:
        """Answer a received request: with ``result``, or with the failure ``error``
        describes (``ran``: its handler raised it; RESP-2)."""
        conn = self.conn
        if error is None:
            line = conn.send_response(request_id, 200, result)
        else:
            status, payload = error_to_wire(error, include_stack=self._include_stack, ran=ran)
            try:
                line = conn.send_response(request_id, status, error_payload=payload)
            except EncodeError:
                line = conn.send_response(request_id, status, error_payload=bare_payload(payload))
        self.write(line)
