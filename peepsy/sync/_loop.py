"""An event loop on a thread of its own, and blocking calls into it from other threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


def refuse_inside_a_loop(what: str) -> None:
    """A blocking call from a thread that runs an event loop would freeze that loop (and,
    from the facade's own loop thread, deadlock): refuse it with the way out."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{what} blocks, and this thread runs an event loop: use the async "
        "peepsy.Master there (await master.request(...))"
    )


class LoopThread:
    """Runs an event loop on a daemon thread until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it. Interrupted (Ctrl-C), the coroutine
        is cancelled, so a request it was waiting for is withdrawn, and the interrupt
        goes on."""
        return wait(self.submit(coro))

    def iterate(
        self, source: AsyncIterator[T], deadline: float | None = None
    ) -> Generator[T, None, None]:
        """A plain iterator over ``source``, which runs on the loop. The next item is
        already asked for while the caller handles this one, so the loop keeps working
        between two ``next()``; leaving the loop early closes ``source``. Past
        ``deadline`` (``time.monotonic()``), waiting for an item raises TimeoutError."""
        running: list[asyncio.Task[Any]] = []
        pending = self.submit(_anext(source, running))
        try:
            while True:
                done, item = wait(pending, deadline)
                if done:
                    return
                pending = self.submit(_anext(source, running))
                yield item
        finally:
            if self.running:
                wait(self.submit(_aclose(source, running)))

    def stop(self) -> None:
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


def wait(future: concurrent.futures.Future[T], deadline: float | None = None) -> T:
    """``future``'s result; Ctrl-C cancels it. Past ``deadline`` (``time.monotonic()``)
    TimeoutError, the future left to whoever closes what it belongs to."""
    try:
        if deadline is None:
            return future.result()
        return future.result(max(deadline - time.monotonic(), 0))
    except KeyboardInterrupt:
        future.cancel()
        raise


async def _anext(source: AsyncIterator[T], running: list[asyncio.Task[Any]]) -> tuple[bool, Any]:
    task = asyncio.current_task()
    assert task is not None
    running[:] = [task]
    try:
        return False, await anext(source)
    except StopAsyncIteration:
        return True, None


async def _aclose(source: AsyncIterator[Any], running: list[asyncio.Task[Any]]) -> None:
    # The prefetch may still run: end it first, as a generator cannot be closed while
    # it runs (its cancellation withdraws what it has in flight).
    for task in running:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
