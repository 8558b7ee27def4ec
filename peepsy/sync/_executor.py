"""``Executor``: run plain functions in peepsy children, as ProcessPoolExecutor does."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Final, ParamSpec, TypeVar

from peepsy._checks import check_int
from peepsy.child._functions import CALL, CALL_MANY, function_ref
from peepsy.master import Master as AsyncMaster
from peepsy.sync._loop import LoopThread, refuse_inside_a_loop, wait

P = ParamSpec("P")
T = TypeVar("T")

#: The group of an executor's children.
GROUP: Final = "peepsy.functions"
#: Requests ``map`` keeps in flight per child by default: the next few wait in the
#: child while it runs one, so light calls do not pay a round trip each (with 1 or 2,
#: trivial calls ran markedly slower; beyond 4, no faster on the 2-core machine).
DEFAULT_PER_WORKER: Final = 4
#: The per-call timeout by default: the longest a request may state (ms).
DEFAULT_CALL_TIMEOUT: Final = 300_000


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{what} must be JSON (dicts with str keys, lists, str, int, finite float, "
            f"bool, None): {error}"
        ) from None


def _chunks(iterables: tuple[Iterable[Any], ...], size: int) -> Iterator[list[list[Any]]]:
    rows = map(list, zip(*iterables, strict=False))
    while chunk := list(itertools.islice(rows, size)):
        _check_json(chunk, "arguments")
        yield chunk


class Executor(concurrent.futures.Executor):
    """A :class:`concurrent.futures.Executor` whose workers are peepsy children running
    plain Python functions: moving from ProcessPoolExecutor is one line::

        with peepsy.sync.Executor(max_workers=4) as pool:
            results = list(pool.map(score, items, chunksize=100))

    ``fn`` must be importable by a child: a function at the top level of a module, or
    of the script being run (imported in the child without running its ``__main__``
    block). Arguments and results cross as JSON, not pickles: a non-JSON argument raises
    TypeError before anything is sent, and an exception in ``fn`` comes back as
    :class:`~peepsy.RemoteError` (its message; not the original exception object, which
    would need unpickling code from the child). ``timeout`` bounds each call in
    milliseconds (at most 300000); the children restart if they die, and run with the
    master's ``sys.path`` and working directory. ``map`` keeps ``per_worker`` requests
    in flight per child: more keeps light calls flowing (a child never idles for a
    round trip), fewer spreads long calls of uneven length better.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        timeout: int = DEFAULT_CALL_TIMEOUT,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        per_worker: int = DEFAULT_PER_WORKER,
    ) -> None:
        refuse_inside_a_loop("peepsy.sync.Executor")
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        check_int("max_workers", max_workers, 1)
        check_int("per_worker", per_worker, 1)
        self._per_worker = per_worker
        path = os.pathsep.join(p for p in sys.path if p)
        self._env = {"PYTHONPATH": path, **(env or {})}
        self._timeout = timeout
        self._max_workers = max_workers
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._thread = LoopThread("peepsy.sync.Executor")
        self._shutdown = False
        try:
            self._master = self._thread.call(_start(max_workers, python, self._env, timeout))
        except BaseException:
            self._thread.stop()
            raise

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` in a child; the future holds its result."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        payload = {"fn": function_ref(fn), "args": list(args), "kwargs": kwargs}
        _check_json(payload["args"], "arguments")
        _check_json(kwargs, "keyword arguments")
        future = self._thread.submit(_call(self._master, payload, self._timeout))
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """``fn`` over the items, results in order, as ProcessPoolExecutor's ``map``:
        ``timeout`` (seconds) counts from this call, and ``chunksize`` items go to a
        child in one request. Unlike it, the items are read only as children free up
        (``max_workers`` requests in flight), so an endless iterable works; the first
        failure is raised at its place in order, and the requests after it withdrawn."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        check_int("chunksize", chunksize, 1)
        refuse_inside_a_loop("peepsy.sync.Executor")
        ref = function_ref(fn)
        deadline = None if timeout is None else time.monotonic() + timeout
        payloads = ({"fn": ref, "args": chunk} for chunk in _chunks(iterables, chunksize))
        source = self._master.map(
            CALL_MANY,
            GROUP,
            payloads,
            concurrency=self._per_worker * self._max_workers,
            timeout=self._timeout,
        )
        return _flatten(self._thread.iterate(source, deadline))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the children (gracefully: running calls finish) and the loop's thread.
        ``cancel_futures`` cancels calls not finished yet, withdrawing them."""
        if self._shutdown:
            return
        self._shutdown = True
        if cancel_futures:
            for future in list(self._futures):
                future.cancel()
        if not wait:
            # Stopping the children still takes the loop; without waiting, a daemon
            # thread does it and the process may exit before it is done.
            threading.Thread(target=self._stop, daemon=True).start()
            return
        self._stop()

    def _stop(self) -> None:
        try:
            _wait(self._thread.submit(self._master.graceful_shutdown()))
        finally:
            self._thread.stop()


_wait = wait


def _flatten(replies: Generator[Any, None, None]) -> Iterator[Any]:
    try:
        for reply in replies:
            yield from reply.data
    finally:
        replies.close()


async def _start(
    count: int, python: str, env: dict[str, str], timeout: int
) -> AsyncMaster[Any, Any]:
    master: AsyncMaster[Any, Any] = AsyncMaster(timeout=timeout)
    # The next call goes to the child with the least queued: calls of uneven length
    # then wait behind short ones rather than behind a long one.
    master.configure_group(GROUP, strategy="least-busy")
    try:
        for i in range(count):
            await master.spawn_child(
                f"{GROUP}.{i}",
                [python, "-m", "peepsy.child", "--functions"],
                group=GROUP,
                env=env,
                cwd=os.getcwd(),
            )
    except BaseException:
        await master.graceful_shutdown()
        raise
    return master


async def _call(master: AsyncMaster[Any, Any], payload: dict[str, Any], timeout: int) -> Any:
    reply = await master.request(CALL, GROUP, payload, timeout=timeout)
    return reply.data
