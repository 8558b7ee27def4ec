"""An event loop on a thread of its own, and blocking calls into it from other threads."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any, Generic, TypeVar

from peepsy._errors import PeepsyShutdownError

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
        self._pumps: weakref.WeakSet[_Pump[Any]] = weakref.WeakSet()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()
            # An iterator still open would wait for a loop that is gone.
            for pump in list(self._pumps):
                pump.abandon()

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
        self, source: AsyncGenerator[T, None], deadline: float | None = None
    ) -> Generator[T, None, None]:
        """A plain iterator over ``source``, which runs on the loop from now on (not
        from the first ``next()``), up to :data:`AHEAD` items ahead of the caller: the
        loop keeps working between two ``next()``, and the caller takes what is ready in
        one hop between threads, not one per item. Leaving the loop early closes
        ``source``. Past ``deadline`` (``time.monotonic()``), waiting for an item raises
        TimeoutError."""
        pump: _Pump[T] = _Pump(source)
        self._pumps.add(pump)
        self.submit(pump.started)
        return self._drain(pump, deadline)

    def _drain(self, pump: _Pump[T], deadline: float | None) -> Generator[T, None, None]:
        try:
            while batch := pump.take(deadline):
                self.loop.call_soon_threadsafe(pump.free, len(batch))
                yield from batch
        finally:
            if self.running:
                wait(self.submit(pump.close()))

    def stop(self) -> None:
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


def wait(future: concurrent.futures.Future[T]) -> T:
    """``future``'s result; Ctrl-C cancels it (so the coroutine behind it) and goes on."""
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise


#: How many items :meth:`LoopThread.iterate` reads ahead of its caller.
AHEAD = 256


class _Pump(Generic[T]):
    """Moves items from an async iterator on the loop to a thread that takes them."""

    def __init__(self, source: AsyncGenerator[T, None]) -> None:
        self._source = source
        self._ready: collections.deque[T] = collections.deque()
        self._changed = threading.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self._room: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None
        #: What the loop runs (kept to be closed if the loop stops before it starts).
        self.started = self.run()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        self._room = room = asyncio.Semaphore(AHEAD)
        try:
            async for item in self._source:
                with self._changed:
                    self._ready.append(item)
                    self._changed.notify()
                await room.acquire()
        except BaseException as error:
            self._error = error
            if not isinstance(error, Exception):
                raise
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify()

    def abandon(self) -> None:
        """The loop stopped: the caller gets the items ready, then an error."""
        if self._task is None:
            self.started.close()  # never started: nothing to unwind
        with self._changed:
            if not self._ended:
                self._ended = True
                self._error = PeepsyShutdownError("closed while an iterator was open")
                self._changed.notify()

    def free(self, count: int) -> None:
        """On the loop: the caller took ``count`` items."""
        room = self._room
        assert room is not None  # set before the first item was handed over
        for _ in range(count):
            room.release()

    def take(self, deadline: float | None) -> list[T]:
        """Every item ready, waiting for at least one; [] at the end of the source, or
        its exception once the items before it are taken."""
        with self._changed:
            while not self._ready and not self._ended:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no result within the timeout")
                self._changed.wait(left)
            batch = list(self._ready)
            self._ready.clear()
        if not batch and self._error is not None:
            error, self._error = self._error, None
            raise error
        return batch

    async def close(self) -> None:
        """On the loop: stop reading (what the source has in flight is withdrawn by its
        own cancellation) and close the source."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._source.aclose()
