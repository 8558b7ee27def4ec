"""A child's requests to its master: checked, sent through the session, retried under
the one retry policy, and their answers turned into data or exceptions; and
:meth:`Child.request <CallsMaster.request>`, the method that makes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from pydantic import MISSING

from peepsy._actions import ActionLike
from peepsy._checks import check_int, check_ms
from peepsy._errors import PeepsyError, PeepsyShutdownError
from peepsy.session import RetryPolicy, Session, answer_of
from peepsy.transport import MasterChannel

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class MasterCalls:
    """``session()`` is the session to call on, or None once the child is stopping."""

    def __init__(
        self, session: Callable[[], Session | None], timeout: int, retry: RetryPolicy
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._retry = retry

    async def request(
        self,
        action: str | ActionLike[Any, Any],
        data: Any,
        timeout: int | None,
        retries: int | None,
        priority: int | None,
    ) -> Any:
        timeout = self._timeout if timeout is None else timeout
        check_ms("timeout", timeout)
        policy = self._retry
        if retries is not None:
            check_int("retries", retries, 0)
            policy = RetryPolicy(retries, policy.delay)
        name = action if isinstance(action, str) else action.name
        payload = data if isinstance(action, str) else action.dump_request(data)
        result = await policy.run(
            lambda: self._once(name, payload, timeout, priority), f"{name} on the master"
        )
        if not isinstance(action, str):
            return action.parse_response(result)
        return result

    async def _once(self, action: str, data: Any, timeout: int, priority: int | None) -> Any:
        session = self._session()
        if session is None:
            raise PeepsyShutdownError("the child is shutting down")
        answer = await answer_of(session.call(action, data, timeout=timeout, priority=priority))
        return None if answer.data is MISSING else answer.data


class CallsMaster:
    """The :class:`~peepsy.Child`'s :meth:`request`, made a part of its own."""

    _calls: MasterCalls
    _channel: MasterChannel | None
    _session: Session | None

    @overload
    async def request(
        self,
        action: ActionLike[Req, Resp],
        data: Req,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Resp: ...
    @overload
    async def request(
        self,
        action: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Any: ...
    async def request(
        self,
        action: str | ActionLike[Any, Any],
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Any:
        """Ask the master to run ``action``; return its response data.

        Raises :class:`~peepsy.RemoteError` when the master answers with a failure,
        :class:`~peepsy.protocol.InvalidResponse` when its answer is invalid (MSG-9),
        :class:`~peepsy.PeepsyTimeoutError` when it does not answer within ``timeout``
        ms (REQ-11; a late answer is then ignored), :class:`~peepsy.protocol.LineTooLongForPeer`
        when the request would be longer than the master's ``maxLineBytes`` (FRAME-11),
        and :class:`~peepsy.PeepsyShutdownError` when the child stops first. Retries
        (``retries``, ``retry_delay`` ms apart) follow the master's rule: only failures
        after which the request cannot have run, or cannot be known to have (a timeout,
        a 408 or 503 answer).
        """
        if self._channel is None or self._session is None:
            raise PeepsyError("the child is not serving")
        return await self._calls.request(action, data, timeout, retries, priority)
