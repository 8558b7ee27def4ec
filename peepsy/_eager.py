"""Run a coroutine eagerly: step it at once, and give it a Task only if it suspends.

Most handlers of a fast worker (an echo, a lookup in memory) finish without ever
waiting. Stepping their coroutine inline saves a Task and a trip round the event loop
for each request. This is what ``eager_start`` does for Tasks from Python 3.12; this
module does the same on 3.11, for our own coroutines only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class _Yield:
    """Re-yields, to the Task that runs us, what the stepped coroutine yielded: the
    future it waits on (or None for a bare ``sleep(0)``), exactly as a Task expects."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, None]:
        yield self.value


async def resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Go on driving ``coro`` after a first step (that yielded ``yielded``) taken outside
    any Task, and return its result: for the Task that takes it over."""
    while True:
        try:
            await _Yield(yielded)
        except BaseException as exc:  # cancellation (or anything thrown) goes inside
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """Step ``coro`` now. Returns None if it finished, else the Task now driving it.

    Exceptions from the first step propagate to the caller, as from a plain call.
    """
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return loop.create_task(resume(coro, yielded))
