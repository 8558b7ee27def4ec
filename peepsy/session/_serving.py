"""Serving the peer's requests: one path for the child and for the master.

A :class:`Server` takes each :class:`~peepsy.protocol.RequestReceived`, finds its
handler (404 when there is none), runs it within a cap on how many run at once, queues
the rest by priority (SCHED-1..4), expires a queued request at its timeout (408,
REQ-4), refuses requests while closing (503, SHUT-1), stops what its sender cancels
(CANCEL-3/4) and turns whatever the handler raised into the answer (RESP-*). Each
handler runs with its :class:`~peepsy.session.RequestContext` current. The cap is the
whole scheduling policy: 1 for a sequential worker, ``N`` or unbounded for a concurrent
one; it is read on every decision, so a worker whose INIT changes it applies the change
at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, Final

from peepsy._actions import HandlerEntry, Handlers
from peepsy._eager import resume, start_eagerly
from peepsy._errors import (
    EncodeError,
    HandlerError,
    PeepsyCancelledError,
    PeepsyNotFoundError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    PeepsyValidationError,
)
from peepsy._failures import NOT_FOUND_TEMPLATE, handler_frames
from peepsy.protocol import RequestReceived
from peepsy.protocol._codec import printable
from peepsy.session._context import CURRENT, Contexts, cancelled_error, context_of

#: How long a queued request waits when its REQUEST names no timeout (REQ-4).
DEFAULT_QUEUE_TIMEOUT_MS: Final = 5000

#: ``respond(request_id, result, error, ran)``: answer with ``result`` when ``error`` is
#: None, else with the failure ``error`` describes (``ran``: the handler raised it).
Respond = Callable[[str, Any, BaseException | None, bool], None]


class _Queued:
    """A request waiting for room, with the timer that expires it (REQ-4)."""

    __slots__ = ("done", "entry", "event", "timer")

    def __init__(
        self,
        event: RequestReceived,
        entry: HandlerEntry,
        loop: asyncio.AbstractEventLoop,
        expire: Callable[[_Queued], None],
    ) -> None:
        self.event = event
        self.entry = entry
        self.done = False
        timeout = event.timeout or DEFAULT_QUEUE_TIMEOUT_MS
        self.timer = loop.call_later(timeout / 1000, expire, self)

    def take(self) -> None:
        """Out of the queue, to run or to be answered: it no longer expires."""
        self.done = True
        self.timer.cancel()


class Server:
    """Runs the handlers of ``handlers`` for one channel's received requests.

    ``capacity()`` says how many may run at once (``None``: no cap); ``executor()``
    gives the threads for sync handlers (``None``: the loop's default); ``name()`` the
    name this side serves under, if known, for its log lines. ``on_idle`` is
    called each time the last running handler finishes while closing. A handler's
    exception is logged on ``peepsy.child`` (``peepsy.master`` when ``who`` is the
    master): at ERROR with its traceback, but a :class:`HandlerError` at INFO (4xx) or
    WARNING (5xx) and data that does not fit a typed action at WARNING, both without
    one; a cancellation not at all.
    """

    __slots__ = (
        "_capacity",
        "_contexts",
        "_draining",
        "_executor",
        "_handlers",
        "_log",
        "_loop",
        "_name",
        "_queue",
        "_respond",
        "_seq",
        "_tasks",
        "_who",
        "closing",
        "handled",
        "on_idle",
        "queued",
        "running",
    )

    def __init__(
        self,
        handlers: Handlers,
        respond: Respond,
        loop: asyncio.AbstractEventLoop,
        *,
        capacity: Callable[[], int | None],
        executor: Callable[[], Executor | None] = lambda: None,
        who: str = "the child",
        name: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._handlers = handlers
        self._respond = respond
        self._loop = loop
        self._capacity = capacity
        self._executor = executor
        self._who = who  # for the 503 text: "the child is shutting down"
        # A handler's failure is logged by the side that ran it: peepsy.child, or
        # peepsy.master for the master's own handlers.
        self._log = logging.getLogger("peepsy." + who.rsplit(" ", 1)[-1])
        self._name = name  # in those log lines: which worker, among several on one stderr
        self._queue: list[tuple[int, int, _Queued]] = []
        self._seq = itertools.count()
        self._draining = False
        # The handlers that are waiting, each with its request and whether cancelling
        # its task stops it (async) or it can only be told (sync, in a thread): the
        # ones a CANCEL can still reach (one that finished at once has been answered).
        self._tasks: dict[asyncio.Task[None], tuple[RequestReceived, bool]] = {}
        self._contexts: Contexts = {}
        self.closing = False
        self.running = 0
        self.queued = 0
        #: Requests answered after their handler ran (successfully or not).
        self.handled = 0
        self.on_idle: Callable[[], None] | None = None

    def _has_room(self) -> bool:
        cap = self._capacity()
        return cap is None or self.running < cap

    def accept(self, event: RequestReceived) -> None:
        """Take a received request: run it, queue it, or answer it at once (404 for an
        unknown action, 503 while shutting down, ...)."""
        if self.closing:
            self._respond(event.id, None, self._refusal(), False)
            return
        entry = self._handlers.get(event.action)
        if entry is None:
            message = NOT_FOUND_TEMPLATE.format(action=printable(event.action))
            self._respond(event.id, None, PeepsyNotFoundError(message), False)
        elif not self.queued and ((cap := self._capacity()) is None or self.running < cap):
            self._start(event, entry)  # (the test is _has_room's, inline: once per request)
        else:
            self._enqueue(event, entry)

    def _enqueue(self, event: RequestReceived, entry: HandlerEntry) -> None:
        item = _Queued(event, entry, self._loop, self._expire)
        heapq.heappush(self._queue, (-event.priority, next(self._seq), item))
        self.queued += 1

    def _expire(self, item: _Queued) -> None:
        if item.done:
            return
        item.done = True
        self.queued -= 1
        event = item.event
        timeout = event.timeout or DEFAULT_QUEUE_TIMEOUT_MS
        error = PeepsyTimeoutError(
            f"Request expired in the queue after {timeout}ms", action=event.action
        )
        self._respond(event.id, None, error, False)

    def _pop(self) -> _Queued | None:
        while self._queue:
            _, _, item = heapq.heappop(self._queue)
            if not item.done:
                item.take()
                self.queued -= 1
                return item
        return None

    def _start(self, event: RequestReceived, entry: HandlerEntry) -> None:
        # Stepped eagerly: a handler that never waits is answered before this returns,
        # with no Task and no loop pass.
        self.running += 1
        # What the handler's task, or thread, copies: its RequestContext is only made
        # if asked for (current_request) or needed (a CANCEL).
        token = CURRENT.set((self._contexts, event))
        try:
            if entry.is_async and entry.action is None:
                # The handler's own coroutine, stepped here: no wrapper coroutines at all.
                try:
                    coro = entry.fn(event.data)
                    yielded = coro.send(None)
                except StopIteration as stop:
                    self._done(event, stop.value, None)
                    return
                except Exception as exc:
                    self._done(event, None, exc)
                    return
                task: asyncio.Task[None] | None = self._loop.create_task(
                    self._resume(event, coro, yielded)
                )
            else:
                task = start_eagerly(self._loop, self._execute(event, entry))
        finally:
            CURRENT.reset(token)
        if task is not None:
            # An async handler is stopped by cancelling its task; a sync one, in a
            # thread, can only be told (CANCEL-4).
            self._tasks[task] = (event, entry.is_async or entry.inline)
            task.add_done_callback(self._tasks.pop)

    def _start_queued(self) -> None:
        # Not re-entered: a request that finishes eagerly inside the loop only frees
        # its slot, and this loop takes the next.
        if self._draining:
            return
        self._draining = True
        try:
            while self.queued and self._has_room():
                item = self._pop()
                if item is None:  # pragma: no cover - `queued` counts live entries
                    break
                self._start(item.event, item.entry)
        finally:
            self._draining = False

    async def _execute(self, event: RequestReceived, entry: HandlerEntry) -> None:
        try:
            result = await entry.run(event.data, self._executor())
        except asyncio.CancelledError:
            if not self._stopped(event):
                raise
        except Exception as exc:
            self._done(event, None, exc)
        else:
            self._done(event, result, None)

    async def _resume(
        self, event: RequestReceived, coro: Coroutine[Any, Any, Any], yielded: Any
    ) -> None:
        try:
            result = await resume(coro, yielded)
        except asyncio.CancelledError:
            if not self._stopped(event):
                raise
        except Exception as exc:
            self._done(event, None, exc)
        else:
            self._done(event, result, None)

    def _stopped(self, event: RequestReceived) -> bool:
        """A handler's task was cancelled: by a CANCEL, it is answered 499 (CANCEL-4)
        and the cancellation ends here (True); by :meth:`abandon`, its slot is freed and
        the cancellation goes on (the channel is going)."""
        context = self._contexts.get(event.id)
        if context is not None and context.cancelled:
            self._done(event, None, cancelled_error(context))
            return True
        self._contexts.pop(event.id, None)
        self._release()
        return False

    def _done(self, event: RequestReceived, result: Any, error: Exception | None) -> None:
        """A handler finished: answer with its result or its error, free its slot."""
        self.handled += 1
        request_id = event.id
        try:
            if error is None:
                try:
                    self._respond(request_id, result, None, True)
                except EncodeError as exc:
                    self._log.error(
                        "handler for %r (request %r) returned what cannot be sent: %s",
                        printable(event.action),
                        request_id,
                        exc,
                    )
                    self._respond(request_id, None, exc, True)
            else:
                _log_failure(self._log, event, error, self._name())
                self._respond(request_id, None, error, True)
        finally:
            if self._contexts:  # only a request asked about, or cancelled, has one
                self._contexts.pop(request_id, None)
            self._release()

    def _release(self) -> None:
        self.running -= 1
        if self.closing:
            if self.running == 0 and self.on_idle is not None:
                self.on_idle()
        elif self.queued:
            self._start_queued()

    def cancel(self, request_id: str, reason: str | None = None) -> bool:
        """The sender of ``request_id`` cancelled it: a queued request is removed and
        answered 499 at once (CANCEL-3); a running one is told through its context, and
        an async one's task cancelled, so that it is answered 499 when it stops
        (CANCEL-4). Returns whether this did anything: not for a request neither queued
        nor waiting (answered already), nor for one cancelled before (CANCEL-6)."""
        for task, (event, stops) in self._tasks.items():
            # A task done is answered already (its entry leaves with the next pass).
            if event.id == request_id and not task.done():
                if not context_of(self._contexts, event).cancel(reason):
                    return False
                if stops:
                    # On the loop's next pass, after the task's first step: a task
                    # cancelled before it starts never enters the code that answers.
                    self._loop.call_soon(task.cancel)
                return True
        for _, _, item in self._queue:
            event = item.event
            if event.id == request_id and not item.done:  # queued: it has no context
                item.take()
                self.queued -= 1
                why = f" ({reason})" if reason else ""
                error = PeepsyCancelledError(
                    f"request {request_id!r} for {event.action!r} was cancelled by its "
                    f"sender before it ran{why}",
                    action=event.action,
                    reason=reason,
                )
                self._respond(request_id, None, error, False)
                return True
        return False

    def close(self) -> None:
        """Take no more requests: each queued one, and each that comes, is answered 503."""
        if self.closing:
            return
        self.closing = True
        while (item := self._pop()) is not None:
            self._respond(item.event.id, None, self._refusal(), False)

    def _refusal(self) -> PeepsyShutdownError:
        return PeepsyShutdownError(f"{self._who} is shutting down")

    def abandon(self) -> None:
        """Cancel the handlers still running (async ones stop at their next await)."""
        for task in list(self._tasks):
            task.cancel()


def _log_failure(
    log: logging.Logger, event: RequestReceived, error: Exception, name: str | None
) -> None:
    """Say on this side why a request failed, as only its text crosses the wire (and its
    stack only when asked). What a handler chose to answer (a :class:`HandlerError`) or
    data that does not fit a typed action (the error names each field) is not a crash:
    no traceback. A
    cancellation is the sender's own doing, not a failure."""
    if isinstance(error, PeepsyCancelledError):
        return
    where = "" if name is None else f" on {name!r}"
    what = f"handler for {printable(event.action)!r}{where} (request {event.id!r})"
    if isinstance(error, HandlerError):
        level = logging.INFO if error.status < 500 else logging.WARNING
        log.log(level, "%s answered %d: %s", what, error.status, error)
    elif isinstance(error, PeepsyValidationError):
        log.warning("%s: %s", what, error)
    else:
        exc_info = (type(error), error, handler_frames(error))
        log.error("%s raised %s: %s", what, type(error).__name__, error, exc_info=exc_info)
