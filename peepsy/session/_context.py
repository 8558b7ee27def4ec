"""The request a handler is running for: :func:`current_request` and its
:class:`RequestContext`, through which a handler learns that its request was cancelled
(CANCEL-4).

A context variable says which request runs, set by the :class:`~peepsy.session.Server`
around each handler: an async handler (and every task it starts) sees it, and a sync
handler sees it in its worker thread, into which the context is copied. What it holds
is what already exists (the server's table of contexts, the request's event), so that
a request pays for no object of its own: its :class:`RequestContext` is made when the
handler asks for it or a CANCEL comes for it, whichever is first, and kept in the
server's table until the request is answered. The cancellation flag is a plain
attribute that any thread may read; the :class:`threading.Event` a sync handler can
wait on is made only when one does.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, TypeAlias

from peepsy._errors import PeepsyCancelledError

if TYPE_CHECKING:
    from peepsy.protocol import RequestReceived

#: A server's contexts, by request id: made on demand, dropped once answered.
Contexts: TypeAlias = "dict[str, RequestContext]"

#: Set by the Server around each handler it starts: its table, and the request.
CURRENT: Final[ContextVar[tuple[Contexts, RequestReceived]]] = ContextVar("peepsy_request")
# Taken only to make the event a handler waits on, and to cancel: never per request.
_event_lock: Final = threading.Lock()


class RequestContext:
    """The request being handled: its ``id`` and ``action``, and whether its sender has
    cancelled it. Get it with :func:`peepsy.current_request` inside a handler.

    An async handler needs none of this to stop: it is cancelled through asyncio (its
    ``await`` raises :class:`asyncio.CancelledError`). A sync handler runs in a thread,
    which nothing can stop from outside; it stops early by looking here: poll
    :attr:`cancelled`, wait on :meth:`wait_cancelled` instead of sleeping, or call
    :meth:`raise_if_cancelled` between steps. A handler that stops with
    :class:`~peepsy.PeepsyCancelledError` is answered 499; one that returns anyway is
    answered with its result (CANCEL-4).
    """

    __slots__ = ("_cancelled", "_event", "action", "id", "reason")

    def __init__(self, request_id: str, action: str) -> None:
        self.id = request_id
        self.action = action
        #: Why it was cancelled, as the CANCEL said (``None``: not said, or not cancelled).
        self.reason: str | None = None
        self._cancelled = False
        self._event: threading.Event | None = None

    def __repr__(self) -> str:
        state = ", cancelled" if self._cancelled else ""
        return f"RequestContext(id={self.id!r}, action={self.action!r}{state})"

    @property
    def cancelled(self) -> bool:
        """Whether the request's sender cancelled it (a CANCEL came for it)."""
        return self._cancelled

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block until the request is cancelled, or ``timeout`` seconds pass; returns
        :attr:`cancelled`. For sync handlers, in their thread: ``wait_cancelled(0.5)``
        in place of ``time.sleep(0.5)`` wakes at once when the CANCEL comes. (On the
        event loop, in an async handler, it would block every other request.)"""
        with _event_lock:
            event = self._event
            if event is None:
                event = self._event = threading.Event()
                if self._cancelled:
                    event.set()
        return event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~peepsy.PeepsyCancelledError` if the request was cancelled:
        the handler stops there, and the request is answered 499."""
        if self._cancelled:
            raise cancelled_error(self)

    def cancel(self, reason: str | None) -> bool:
        """Mark it cancelled (the :class:`~peepsy.session.Server` does, for a CANCEL);
        returns False if it already was (CANCEL-6)."""
        with _event_lock:
            if self._cancelled:
                return False
            self.reason = reason
            self._cancelled = True
            if self._event is not None:
                self._event.set()
        return True


def cancelled_error(context: RequestContext) -> PeepsyCancelledError:
    why = f" ({context.reason})" if context.reason else ""
    return PeepsyCancelledError(
        f"request {context.id!r} for {context.action!r} was cancelled by its sender{why}",
        action=context.action,
        reason=context.reason,
    )


def current_request() -> RequestContext:
    """The request the calling handler runs for (in an async handler, a task it
    started, or a sync handler's thread). Raises :class:`RuntimeError` elsewhere."""
    try:
        contexts, event = CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "current_request() is only valid inside a handler that peepsy runs"
        ) from None
    return context_of(contexts, event)


def context_of(contexts: Contexts, event: RequestReceived) -> RequestContext:
    """The context of ``event``'s request in ``contexts``, made if it is the first ask
    (from the loop or a handler's thread: setdefault keeps the first one made)."""
    rid = event.id
    context = contexts.get(rid)
    if context is None:
        context = contexts.setdefault(rid, RequestContext(rid, event.action))
    return context
