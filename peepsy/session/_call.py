"""A call: one request we sent, and the future of its answer (see
:class:`~peepsy.session.Session`, which makes and settles them)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, cast

from peepsy._failures import error_from_wire
from peepsy.protocol import ResponseReceived

if TYPE_CHECKING:
    from peepsy.session._session import Session


class Slot(Protocol):
    """Something a call holds until it is settled (a group's capacity)."""

    def release(self) -> None:
        """Give the unit back; called once, when the call is settled."""


R = TypeVar("R")

# Called directly, not through super(): about 100 ns of the master's time per request.
_future_init: Final = asyncio.Future.__init__


class Call(asyncio.Future[R]):
    """One request we sent, and the future of its answer: it settles once, with what
    :meth:`settle` makes of the answer (by default the answer's
    :class:`~peepsy.protocol.ResponseReceived` itself), or fails. One object for both
    keeps a request in flight small; a subclass that settles with its caller's final
    value saves the caller a coroutine of its own."""

    __slots__ = (
        "action",
        "id",
        "session",
        "slot",
        "started",
        "timeout",
        "wheel",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: Session,
        action: str,
        timeout: int,
        started: float,
        slot: Slot | None,
    ) -> None:
        _future_init(self, loop=loop)
        self.session = session
        self.action = action
        self.timeout = timeout
        self.started = started
        self.slot = slot
        self.id = ""
        self.wheel: set[Call[Any]] | None = None

    def settle(self, event: ResponseReceived) -> None:
        """Resolve with the answer ``event`` (not called once cancelled)."""
        self.set_result(cast(R, event))

    @property
    def deadline(self) -> float:
        """Loop time at which it times out (computed: one float less per call)."""
        return self.started + self.timeout / 1000

    def withdraw(self) -> None:
        """The caller gave up (its task was cancelled): forget the request and release
        what it holds; an answer that still comes is late."""
        self.session.withdraw(self)

    def cancel(self, msg: Any | None = None) -> bool:
        # A task cancelled while it awaits the call cancels the call itself: withdrawn
        # here, so a caller that awaits it directly needs no wrapper to release it.
        if not super().cancel(msg):
            return False
        self.session.withdraw(self)
        return True


C = TypeVar("C", bound=Call[Any])


def expire(call: Call[Any]) -> None:
    """For :class:`~peepsy.session.Deadlines`: one wheel serves every session on a loop."""
    call.session.expire(call)


async def answer_of(call: Call[ResponseReceived]) -> ResponseReceived:
    """Wait for ``call``'s answer; a failure status is raised as
    :class:`~peepsy.RemoteError`. A caller cancelled while waiting withdraws the call."""
    try:
        answer = await call
    except asyncio.CancelledError:
        call.withdraw()  # the caller gave up: release what the call holds
        raise
    if answer.status >= 400:
        raise error_from_wire(answer.response, action=call.action, target=call.session.peer)
    return answer
