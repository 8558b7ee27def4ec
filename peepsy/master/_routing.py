"""Where a request goes: to a child by name, or through a group's capacity and strategy.

The router owns no workers and no groups; it reads the tables the master keeps, takes a
group's :class:`~peepsy.master._groups.Slot` when there is a group, and hands the call
to the chosen worker's session. One attempt; retries wrap it (``RetryPolicy.run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from pydantic import MISSING

from peepsy._actions import ActionLike
from peepsy._checks import check_int, check_ms, check_priority, check_str
from peepsy._errors import (
    PeepsyError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    RemoteError,
)
from peepsy._failures import error_from_wire
from peepsy.master._groups import Group
from peepsy.master._stats import Reply, make_reply
from peepsy.master._worker import ACCEPTING, Worker
from peepsy.protocol import ResponseReceived
from peepsy.session import Call, RetryPolicy, Session, answer_of

#: The longest timeout a REQUEST may state (schema: TimeoutMs).
MAX_TIMEOUT_MS = 300_000


class _ReplyCall(Call[Reply[Any]]):
    """A call sent at once by :meth:`Router.request`, and what the caller awaits: it
    settles with the caller's ``Reply``, or with the failure as an exception. It is
    also a coroutine (``send``, ``throw``, ``close``), so that ``create_task`` and
    ``asyncio.run`` take it as they take any ``request()``; awaiting it costs the
    caller no coroutine of its own (a frame and about 200 bytes per request)."""

    __slots__ = ()

    def settle(self, event: ResponseReceived) -> None:
        target = self.session.peer
        if event.status >= 400:
            error = error_from_wire(
                event.response, action=self.action, target=target, group=_group_of(self.session)
            )
            self.set_exception(error)
        else:
            data = event.data
            if data is MISSING:
                data = None
            self.set_result(make_reply(event.status, data, event.id, target, self.action))

    # A Task drives a coroutine by send(None) until StopIteration: here, by yielding
    # the call itself (a future the task then waits on) until it is done.
    def send(self, value: None) -> _ReplyCall:
        if self.done():
            raise StopIteration(self.result())
        self._asyncio_future_blocking = True
        return self

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> _ReplyCall:
        self.cancel()  # what a task throws in is its cancellation
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        raise val if tb is None else val.with_traceback(tb)

    def close(self) -> None:
        pass


Coroutine.register(_ReplyCall)


class Router:
    def __init__(
        self,
        workers: dict[str, Worker],
        groups: dict[str, Group],
        retry: RetryPolicy,
        timeout: int,
    ) -> None:
        self._workers = workers
        self._groups = groups
        self._retry = retry
        self._timeout = timeout
        #: Set by :meth:`close`: requests then fail with PeepsyShutdownError.
        self.closed = False
        #: Requests waiting for a child or a group's member to come (back) into service,
        #: by the child's or the group's name.
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}

    def close(self) -> None:
        """The master is shutting down: refuse new requests, and those waiting."""
        self.closed = True
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            _wake(futures)

    def changed(self, worker: Worker) -> None:
        """``worker``'s status, readiness or place in its group's rotation changed: the
        requests waiting for it, or for its group, look again."""
        if self._waiting:
            futures = self._waiting.pop(worker.target, None)
            if futures:
                _wake(futures)
            if worker.group is not None and (futures := self._waiting.pop(worker.group, None)):
                _wake(futures)

    async def _wait(self, name: str, started: float, timeout: int, target: str, why: str) -> None:
        """Wait for a change to ``name`` (a child or a group) within what is left of the
        request's ``timeout``; :class:`~peepsy.PeepsyTimeoutError` after it."""
        loop = asyncio.get_running_loop()
        left = started + timeout / 1000 - loop.time()
        future: asyncio.Future[None] = loop.create_future()
        futures = self._waiting.setdefault(name, [])
        futures.append(future)
        try:
            async with asyncio.timeout(max(left, 0)):
                await future
        except TimeoutError:
            raise PeepsyTimeoutError(
                f"Request timed out after {timeout}ms for target: {target} ({why})",
                target=target,
                timeout_ms=timeout,
            ) from None
        finally:
            futures.remove(future)  # from the list, or from the list a wake detached

    async def _until_accepting(
        self, worker: Worker, target: str, started: float, timeout: int
    ) -> Session:
        """A child asked for by name that is (re)starting is waited for, within the
        request's timeout; one that is stopped or failed fails the request at once."""
        while worker.status not in ACCEPTING or worker.session is None:
            if self.closed:
                raise PeepsyShutdownError("the master is shutting down")
            if worker.status not in ("starting", "restarting"):
                raise PeepsyProcessError(
                    f"{target} is not running ({worker.status})", target=target
                )
            await self._wait(worker.target, started, timeout, target, "waiting for its restart")
        return worker.session

    def request(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        data: Any,
        timeout: int | None,
        retries: int | None,
        priority: int | None,
        retry_statuses: Collection[int],
        kind: type[_ReplyCall] = _ReplyCall,
    ) -> Coroutine[Any, Any, Any]:
        """See :meth:`Master.request`. The common case (a string action, without retries,
        to a running child by name or to a group with room) is sent here and now, and the
        caller awaits a small coroutine for its answer: one small frame per request.
        Anything else, and anything that fails, takes :meth:`_request`, so that every
        error is raised where the caller awaits, as from any coroutine. ``kind`` is the
        call sent at once (a typed master's checks its reply: :func:`checked_reply_call`)."""
        if (
            type(action) is str
            and retries is None
            and not retry_statuses
            and not self._retry.retries
            and not self.closed
        ):
            if timeout is None:
                timeout = self._timeout
            if type(timeout) is int and 0 < timeout <= MAX_TIMEOUT_MS:
                try:
                    call = self._send_now(action, target, data, timeout, priority, kind)
                except TypeError:  # an unhashable target: the slow path says which
                    call = None
                if call is not None:
                    return call  # a coroutine too: see _ReplyCall
        return self._request(action, target, data, timeout, retries, priority, retry_statuses)

    def _send_now(
        self,
        action: str,
        target: str,
        data: Any,
        timeout: int,
        priority: int | None,
        kind: type[_ReplyCall],
    ) -> _ReplyCall | None:
        """The call, sent, when it can go at once: to a running child outside any group,
        or to a group with a free slot and a running member. None otherwise, and when
        sending fails (the slow path then raises it where the caller awaits)."""
        worker = self._workers.get(target)
        slot = None
        if worker is None:
            group = self._groups.get(target)
            if group is None or (slot := group.try_acquire()) is None:
                return None
            worker = group.pick_or_none()
        elif worker.group is not None or not worker.accepts:
            return None
        session = worker.session if worker is not None else None
        if session is not None:
            try:
                return session.call(
                    action,
                    data,
                    timeout=timeout,
                    priority=priority,
                    slot=slot,
                    kind=kind,
                )
            except PeepsyError:
                pass
        if slot is not None:
            slot.release()
        return None

    async def _request(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        data: Any,
        timeout: int | None,
        retries: int | None,
        priority: int | None,
        retry_statuses: Collection[int],
    ) -> Any:
        if isinstance(action, str):
            name, payload = action, data
        else:
            named = getattr(action, "name", None)
            if not isinstance(named, str) or not hasattr(action, "dump_request"):
                raise TypeError(
                    f"action is a str or an Action, not {type(action).__name__} ({action!r})"
                )
            name, payload = named, action.dump_request(data)
        check_str("target", target, "a str (the name of a child or a group)")
        if timeout is None:
            timeout = self._timeout
        else:
            check_ms("timeout", timeout)
        if priority is not None:
            check_priority(priority)
        policy = self._retry
        if retries is not None or retry_statuses:
            if retries is not None:
                check_int("retries", retries, 0)
            policy = RetryPolicy(
                policy.retries if retries is None else retries, policy.delay, retry_statuses
            )
        if policy.retries:
            answer, worker = await policy.run(
                lambda: self._attempt(name, target, payload, timeout, priority),
                f"{name} on {target}",
            )
        else:
            answer, worker = await self._attempt(name, target, payload, timeout, priority)
        result = None if answer.data is MISSING else answer.data
        if not isinstance(action, str):
            return action.parse_response(result)
        return Reply(answer.status, result, answer.id, worker.target, name)

    async def _attempt(
        self, action: str, target: str, data: Any, timeout: int, priority: int | None
    ) -> tuple[ResponseReceived, Worker]:
        if self.closed:
            raise PeepsyShutdownError("the master is shutting down")
        worker = self._workers.get(target)
        if worker is not None and worker.group is None:
            # The common case, kept short: a child by name, outside any group.
            session = worker.session
            if worker.status in ACCEPTING and session is not None:
                call = session.call(action, data, timeout=timeout, priority=priority)
            else:
                started = asyncio.get_running_loop().time()
                session = await self._until_accepting(worker, target, started, timeout)
                call = session.call(
                    action, data, timeout=timeout, priority=priority, started=started
                )
        else:
            worker, call = await self._attempt_in_group(
                action, target, worker, data, timeout, priority
            )
        try:
            return await answer_of(call), worker
        except RemoteError as error:
            error.group = worker.group
            raise

    async def _attempt_in_group(
        self,
        action: str,
        target: str,
        worker: Worker | None,
        data: Any,
        timeout: int,
        priority: int | None,
    ) -> tuple[Worker, Call[ResponseReceived]]:
        group = self._groups.get(target if worker is None else worker.group or "")
        if group is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {target}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        if worker is not None:
            await self._until_accepting(worker, target, started, timeout)
        # A group's cap counts every request to its members, direct ones included.
        slot = group.try_acquire() or await group.acquire(timeout, priority, target)
        try:
            if worker is None:
                worker = await self._member(group, target, started, timeout)
            elif worker.status not in ACCEPTING:
                raise PeepsyProcessError(
                    f"{target} is not running ({worker.status})", target=target
                )
            if loop.time() - started >= timeout / 1000:
                raise PeepsyTimeoutError(
                    f"Request timed out after {timeout}ms for target: {target}",
                    action=action,
                    target=target,
                    timeout_ms=timeout,
                )
            assert worker.session is not None
            call = worker.session.call(
                action, data, timeout=timeout, priority=priority, started=started, slot=slot
            )
        except BaseException:
            slot.release()
            raise
        return worker, call

    async def _member(self, group: Group, target: str, started: float, timeout: int) -> Worker:
        """A member in rotation; while there is none but one may come back (restarting,
        not yet ready, stalled), the request waits for it within its own timeout."""
        while (worker := group.pick_or_none()) is None:
            if self.closed:
                raise PeepsyShutdownError("the master is shutting down")
            if not group.may_come():
                raise PeepsyProcessError(
                    f"no running member in group {group.name}", target=group.name
                )
            await self._wait(group.name, started, timeout, target, "no member in rotation")
        return worker


def _group_of(session: Session) -> str | None:
    """The group of the member behind ``session``: its Worker listens to it. Asked only
    when a request failed, so a request costs nothing more."""
    listener = session._listener
    assert isinstance(listener, Worker)  # as every session the master makes
    return listener.group


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def checked_reply_call(check: Callable[[Reply[Any]], Reply[Any]]) -> type[_ReplyCall]:
    """A :class:`_ReplyCall` whose successful reply passes through ``check`` (which may
    replace it, or raise for the caller) as it settles:
    a typed master's checked request costs no coroutine of its own either."""

    class _CheckedReplyCall(_ReplyCall):
        __slots__ = ()

        def settle(self, event: ResponseReceived) -> None:
            if event.status >= 400:
                super().settle(event)
                return
            data = None if event.data is MISSING else event.data
            reply = make_reply(event.status, data, event.id, self.session.peer, self.action)
            try:
                checked = check(reply)
            except Exception as exc:  # a model's own validator may raise anything
                # The caller's, not the session's: whatever the check raises fails only
                # this request, where it is awaited.
                self.set_exception(exc)
            else:
                self.set_result(checked)

    return _CheckedReplyCall
