"""A child's requests to its master: checked, sent through the session, retried under
the one retry policy, and their answers turned into data or exceptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import MISSING

from peepsy._actions import ActionLike
from peepsy._checks import check_int, check_ms
from peepsy._errors import PeepsyShutdownError
from peepsy.session import RetryPolicy, Session, answer_of


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
