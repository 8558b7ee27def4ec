"""Fanning many requests out to one target: ``Master.map`` and ``Master.as_completed``.

At most ``concurrency`` requests are in flight at once, by default the target's capacity
(see :func:`capacity`), so that no request waits queued inside a child: its timeout,
which starts when it is sent, then measures its own run, not its turn in a queue. Items
are pulled from the iterable only when a slot is free, so a generator of a million items
is never held in memory.

Error policy: ``on_error="raise"`` (the default) stops at the first failure: nothing
more is sent, requests still in flight that the caller will never see are withdrawn
(the child is sent CANCEL), and the failure is raised; for ``map``, only after the
results before it in input order have been yielded, as a loop over the items would.
``on_error="return"`` puts the exception object in the failed item's place and goes on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from typing import Any, Final, Generic, Literal, cast, overload

from typing_extensions import TypeVar

from peepsy._actions import ActionLike
from peepsy._checks import check_int
from peepsy.master._groups import Group
from peepsy.master._stats import Reply
from peepsy.master._worker import Worker

ReqT = TypeVar("ReqT", default=Any)
RespT = TypeVar("RespT", default=Any)
Req = TypeVar("Req")
Resp = TypeVar("Resp")

OnError = Literal["raise", "return"]
"""What ``map`` and ``as_completed`` do with a failed item: ``raise`` it (and withdraw
what is in flight after it) or ``return`` the exception in its place."""

#: Requests in flight for a concurrent child that states no cap of its own.
UNSTATED_CHILD_CAPACITY: Final = 16
#: How far past the oldest result not yet yielded ``map`` may run ahead, in multiples
#: of its concurrency: a slow item holds back at most this many finished results.
MAP_WINDOW: Final = 4

Send = Callable[[Any], Any]
"""Sends one item; returns what ``Master.request`` returns (awaitable)."""


def worker_capacity(worker: Worker) -> int:
    """Requests one child runs at once: 1 when sequential, else its stated cap."""
    if worker.mode != "concurrent":
        return 1
    stated = worker.stated_concurrency
    return UNSTATED_CHILD_CAPACITY if stated is None else stated


def capacity(workers: dict[str, Worker], groups: dict[str, Group], target: str) -> int:
    """Requests ``target`` runs at once without queueing: 1 for a sequential child, a
    concurrent child's stated cap (else :data:`UNSTATED_CHILD_CAPACITY`), a group's
    members summed, within the group's own ``max_concurrency``. 1 for an unknown target
    (its first request then fails as any request to it does)."""
    worker = workers.get(target)
    if worker is not None:
        return worker_capacity(worker)
    group = groups.get(target)
    if group is None:
        return 1
    total = sum(worker_capacity(w) for w in group.members if w.status not in ("stopped", "failed"))
    if group.max_concurrency is not None:
        total = min(total, group.max_concurrency)
    return max(total, 1)


def check_options(concurrency: int | None, on_error: str) -> None:
    """Refuse bad ``map``/``as_completed`` options at the call, not at the first item."""
    if concurrency is not None:
        check_int("concurrency", concurrency, 1)
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error is 'raise' or 'return', not {on_error!r}")


class _Flight:
    """The requests of one fan-out in flight, by index, and a wake-up for the first to
    finish (one callback per request: no scan of the whole set per answer)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.running: dict[int, asyncio.Future[Any]] = {}
        self.finished: deque[int] = deque()
        self._wake: asyncio.Future[None] | None = None

    def start(self, index: int, item: Any) -> None:
        try:
            answer = self._send(item)
        except Exception as error:  # refused before sending: the item's outcome all the same
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        else:
            future = answer if isinstance(answer, asyncio.Future) else asyncio.ensure_future(answer)
        self.running[index] = future
        future.add_done_callback(lambda _: self._done(index))

    def _done(self, index: int) -> None:
        if index not in self.running:
            return  # withdrawn: nobody waits for it
        self.finished.append(index)
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def next_finished(self) -> tuple[int, asyncio.Future[Any]]:
        while True:
            while not self.finished:
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake
            index = self.finished.popleft()
            future = self.running.pop(index, None)
            if future is not None:  # else withdrawn after it finished
                return index, future

    async def withdraw(self, keep: Callable[[int], bool] = lambda _: False) -> None:
        """Cancel every request in flight but those ``keep`` names, and wait until they
        are settled, so none outlives the fan-out."""
        dropped = [self.running.pop(i) for i in list(self.running) if not keep(i)]
        for future in dropped:
            future.cancel()
        if dropped:
            await asyncio.gather(*dropped, return_exceptions=True)


def _outcome(future: asyncio.Future[Any]) -> tuple[bool, Any]:
    """(ok, result or exception) of a settled request; a cancelled one counts as failed."""
    if future.cancelled():
        return False, asyncio.CancelledError()
    error = future.exception()
    if error is None:
        return True, future.result()
    if not isinstance(error, Exception):
        raise error
    return False, error


async def completion_order(
    send: Send, items: Iterable[Any], concurrency: int, on_error: OnError
) -> AsyncGenerator[tuple[int, Any], None]:
    """``(index, result)`` pairs in the order the answers come."""
    flight = _Flight(send)
    source: Iterator[Any] | None = iter(items)
    index = 0
    try:
        while True:
            while source is not None and len(flight.running) < concurrency:
                try:
                    item = next(source)
                except StopIteration:
                    source = None
                    break
                flight.start(index, item)
                index += 1
            if not flight.running:
                return
            done, future = await flight.next_finished()
            ok, value = _outcome(future)
            if not ok and on_error == "raise":
                source = None
                await flight.withdraw()
                raise value
            yield done, value
    finally:
        # The caller stopped early (break, aclose) or we raised: nothing stays in flight.
        await flight.withdraw()


async def input_order(
    send: Send, items: Iterable[Any], concurrency: int, on_error: OnError
) -> AsyncGenerator[Any, None]:
    """Results in input order."""
    flight = _Flight(send)
    source: Iterator[Any] | None = iter(items)
    window = concurrency * MAP_WINDOW
    results: dict[int, tuple[bool, Any]] = {}
    index = 0  # the next item to send
    head = 0  # the next result to yield
    failed_at: int | None = None
    try:
        while True:
            while (
                source is not None and len(flight.running) < concurrency and index - head < window
            ):
                try:
                    item = next(source)
                except StopIteration:
                    source = None
                    break
                flight.start(index, item)
                index += 1
            while head in results:
                ok, value = results.pop(head)
                if not ok and on_error == "raise":
                    raise value
                head += 1
                yield value
            if not flight.running:
                if source is None:
                    return
                continue  # the window was full of finished results: refill it
            done, future = await flight.next_finished()
            outcome = _outcome(future)
            results[done] = outcome
            if not outcome[0] and on_error == "raise" and (failed_at is None or done < failed_at):
                # Nothing after the failure will be yielded: stop sending, withdraw
                # what runs after it, let what comes before it finish.
                failed_at = done
                source = None
                await flight.withdraw(keep=done.__gt__)
                for later in [i for i in results if i > done]:
                    del results[later]
    finally:
        await flight.withdraw()


class FanOut(Generic[ReqT, RespT]):
    """``map`` and ``as_completed`` for :class:`~peepsy.Master`, typed as its
    ``request``: an :class:`~peepsy.Action` gives its response type, a string action a
    :class:`~peepsy.Reply`."""

    _workers: dict[str, Worker]
    _groups: dict[str, Group]

    def _fan_out_send(self, action: Any, target: str, timeout: int | None) -> Send:
        request = cast(Any, self).request  # the facade's own, with whatever it checks

        def send(item: Any) -> Any:
            return request(action, target, item, timeout=timeout)

        return send

    @overload
    def map(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        items: Iterable[Req],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["raise"] = "raise",
    ) -> AsyncGenerator[Resp, None]: ...
    @overload
    def map(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        items: Iterable[Req],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["return"],
    ) -> AsyncGenerator[Resp | Exception, None]: ...
    @overload
    def map(
        self,
        action: str,
        target: str,
        items: Iterable[ReqT],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["raise"] = "raise",
    ) -> AsyncGenerator[Reply[RespT], None]: ...
    @overload
    def map(
        self,
        action: str,
        target: str,
        items: Iterable[ReqT],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["return"],
    ) -> AsyncGenerator[Reply[RespT] | Exception, None]: ...
    def map(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        items: Iterable[Any],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: OnError = "raise",
    ) -> AsyncGenerator[Any, None]:
        """Send ``action`` to ``target`` once per item; yield the results in input order.

        At most ``concurrency`` requests are in flight (by default what the target runs
        at once: 1 per sequential child, a concurrent child's stated cap, summed over a
        group's members), so each request's ``timeout`` counts from when it is sent and
        never covers time queued in a child. Items are taken from ``items`` only as
        slots free up. ``on_error="raise"`` raises the first failure in input order,
        after yielding the results before it, and withdraws the requests after it;
        ``on_error="return"`` yields the exception in the item's place. Leaving the
        loop early withdraws what is in flight (use ``contextlib.aclosing`` to do so at
        once rather than when the generator is collected)."""
        check_options(concurrency, on_error)
        return input_order(
            self._fan_out_send(action, target, timeout),
            items,
            concurrency or capacity(self._workers, self._groups, target),
            on_error,
        )

    @overload
    def as_completed(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        items: Iterable[Req],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["raise"] = "raise",
    ) -> AsyncGenerator[tuple[int, Resp], None]: ...
    @overload
    def as_completed(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        items: Iterable[Req],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["return"],
    ) -> AsyncGenerator[tuple[int, Resp | Exception], None]: ...
    @overload
    def as_completed(
        self,
        action: str,
        target: str,
        items: Iterable[ReqT],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["raise"] = "raise",
    ) -> AsyncGenerator[tuple[int, Reply[RespT]], None]: ...
    @overload
    def as_completed(
        self,
        action: str,
        target: str,
        items: Iterable[ReqT],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: Literal["return"],
    ) -> AsyncGenerator[tuple[int, Reply[RespT] | Exception], None]: ...
    def as_completed(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        items: Iterable[Any],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: OnError = "raise",
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """As :meth:`map`, but yield ``(index, result)`` pairs as the answers come;
        ``index`` is the item's position in ``items``. ``on_error="raise"`` raises the
        first failure to come and withdraws every other request in flight."""
        check_options(concurrency, on_error)
        return completion_order(
            self._fan_out_send(action, target, timeout),
            items,
            concurrency or capacity(self._workers, self._groups, target),
            on_error,
        )
