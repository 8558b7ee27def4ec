"""The blocking facade over :class:`peepsy.Master`, for scripts."""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, get_args, overload

from typing_extensions import TypeVar

from peepsy._actions import ActionLike, HandlerRegistry
from peepsy._errors import PeepsyShutdownError
from peepsy.master import GroupStats, ProcessStats, Reply
from peepsy.master import Master as AsyncMaster
from peepsy.master._events import Observable
from peepsy.master._fanout import OnError
from peepsy.sync._loop import LoopThread, refuse_inside_a_loop
from peepsy.transport import StderrMode

ReqT = TypeVar("ReqT", default=Any)
RespT = TypeVar("RespT", default=Any)
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Master(HandlerRegistry, Observable, Generic[ReqT, RespT]):
    """:class:`peepsy.Master` for code without an event loop: every call blocks.

    ::

        with peepsy.sync.Master(timeout=5000) as master:
            master.spawn_child("w1", ["python", "worker.py"])
            print(master.request("add", "w1", {"a": 1, "b": 2}).data)
            for reply in master.map("add", "w1", ({"a": i, "b": i} for i in range(100))):
                ...

    It takes the options of :class:`peepsy.Master` (the common ones typed here, the others
    passed on as they are) and runs one on an event loop of its own thread, so heartbeats,
    supervision and restarts go on between calls. Typed as the async master: an
    :class:`~peepsy.Action` gives its response type, a string action a
    :class:`~peepsy.Reply`. Ctrl-C during a call withdraws its request (CANCEL to the child)
    and raises KeyboardInterrupt. Event callbacks (:meth:`on`) and the master's handlers run
    on the loop's thread. Calling it from a thread that runs an event loop raises
    RuntimeError: use the async master there. Leaving the ``with`` block (or :meth:`close`)
    shuts the children down gracefully and ends the thread.
    """

    def __init__(
        self,
        *,
        timeout: int = 5000,
        max_retries: int = 0,
        retry_delay: int = 1000,
        heartbeat_interval: int = 2000,
        include_stack: bool = False,
        **options: Any,
    ) -> None:
        refuse_inside_a_loop("peepsy.sync.Master")
        options.update(
            timeout=timeout,
            max_retries=max_retries,
            retry_delay=retry_delay,
            heartbeat_interval=heartbeat_interval,
            include_stack=include_stack,
        )
        self._thread = LoopThread("peepsy.sync.Master")
        try:
            self._master: AsyncMaster[ReqT, RespT] = self._thread.call(_make(options))
        except BaseException:
            self._thread.stop()
            raise
        self._handlers = self._master._handlers
        self._emitter = self._master._emitter
        self._closed = False
        self._typed = False

    @property
    def async_master(self) -> AsyncMaster[ReqT, RespT]:
        """The :class:`peepsy.Master` it drives (use it only on its loop's thread)."""
        return self._master

    def __enter__(self) -> Master[ReqT, RespT]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout: int = 30_000) -> None:
        """Shut every child down gracefully (see ``graceful_shutdown``), then end the
        loop's thread. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._master.graceful_shutdown(timeout))
        finally:
            self._thread.stop()

    def _check_open(self) -> None:
        if not self._thread.running:
            raise PeepsyShutdownError("the master is closed")
        refuse_inside_a_loop("peepsy.sync.Master")
        if not self._typed:
            # Python records ``Master[ReqT, RespT]`` on the instance only after __init__:
            # handed on before the first call, so the async master checks the same types.
            self._typed = True
            subscripted = getattr(self, "__orig_class__", None)
            if subscripted is not None:
                self._master.__orig_class__ = AsyncMaster[get_args(subscripted)]  # type: ignore[attr-defined,misc]

    def _call(self, coro: Any) -> Any:
        try:
            self._check_open()
        except (RuntimeError, PeepsyShutdownError):
            coro.close()
            raise
        return self._thread.call(coro)

    def spawn_child(
        self,
        target: str,
        command: str | Sequence[str],
        mode: Literal["sequential", "concurrent"] = "sequential",
        group: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stderr: StderrMode = "inherit",
        auto_restart: bool = True,
        **options: Any,
    ) -> ProcessStats:
        """See :meth:`peepsy.Master.spawn_child`; the options are the same."""
        options.update(env=env, cwd=cwd, stderr=stderr, auto_restart=auto_restart)
        return self._call(self._master.spawn_child(target, command, mode, group, **options))  # type: ignore[no-any-return]

    def configure_group(self, group: str, **options: Any) -> None:
        """See :meth:`peepsy.Master.configure_group`."""
        self._call(_run(self._master.configure_group, group, **options))

    def restart_child(self, target: str) -> list[str]:
        """See :meth:`peepsy.Master.restart_child`."""
        return self._call(self._master.restart_child(target))  # type: ignore[no-any-return]

    def shutdown_child(self, target: str, timeout: int = 5000) -> int | None:
        """See :meth:`peepsy.Master.shutdown_child`."""
        return self._call(self._master.shutdown_child(target, timeout))  # type: ignore[no-any-return]

    def get_process_stats(self, target: str) -> ProcessStats:
        """See :meth:`peepsy.Master.get_process_stats`."""
        return self._call(_run(self._master.get_process_stats, target))  # type: ignore[no-any-return]

    def get_group_stats(self, group: str) -> GroupStats:
        """See :meth:`peepsy.Master.get_group_stats`."""
        return self._call(_run(self._master.get_group_stats, group))  # type: ignore[no-any-return]

    def get_stderr(self, target: str) -> list[str]:
        """See :meth:`peepsy.Master.get_stderr`."""
        return self._call(_run(self._master.get_stderr, target))  # type: ignore[no-any-return]

    @overload
    def request(
        self,
        action: ActionLike[Req, Resp],
        target: str,
        data: Req,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Resp: ...
    @overload
    def request(
        self,
        action: str,
        target: str,
        data: ReqT = ...,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Reply[RespT]: ...
    def request(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
        retry_statuses: Collection[int] = (),
    ) -> Any:
        """See :meth:`peepsy.Master.request`: the same answer and errors, blocking."""
        options = {
            "timeout": timeout,
            "retries": retries,
            "priority": priority,
            "retry_statuses": retry_statuses,
        }
        return self._call(_request(self._master, action, target, data, options))

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
    ) -> Generator[Resp, None, None]: ...
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
    ) -> Generator[Resp | Exception, None, None]: ...
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
    ) -> Generator[Reply[RespT], None, None]: ...
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
    ) -> Generator[Reply[RespT] | Exception, None, None]: ...
    def map(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        items: Iterable[Any],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: OnError = "raise",
    ) -> Generator[Any, None, None]:
        """See :meth:`peepsy.Master.map`. The requests start at once (before the first
        ``next()``); ``items`` is read on the loop's thread."""
        self._check_open()
        source = self._master.map(
            action, target, items, concurrency=concurrency, timeout=timeout, on_error=on_error
        )
        return self._thread.iterate(source)

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
    ) -> Generator[tuple[int, Resp], None, None]: ...
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
    ) -> Generator[tuple[int, Resp | Exception], None, None]: ...
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
    ) -> Generator[tuple[int, Reply[RespT]], None, None]: ...
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
    ) -> Generator[tuple[int, Reply[RespT] | Exception], None, None]: ...
    def as_completed(
        self,
        action: str | ActionLike[Any, Any],
        target: str,
        items: Iterable[Any],
        *,
        concurrency: int | None = None,
        timeout: int | None = None,
        on_error: OnError = "raise",
    ) -> Generator[tuple[int, Any], None, None]:
        """See :meth:`peepsy.Master.as_completed`: ``(index, result)`` pairs as they come."""
        self._check_open()
        source = self._master.as_completed(
            action, target, items, concurrency=concurrency, timeout=timeout, on_error=on_error
        )
        return self._thread.iterate(source)


async def _make(options: dict[str, Any]) -> AsyncMaster[Any, Any]:
    return AsyncMaster(**options)


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # Plain methods too run on the loop's thread: the master's state is the loop's alone.
    return fn(*args, **kwargs)


async def _request(
    master: AsyncMaster[Any, Any], action: Any, target: str, data: Any, options: dict[str, Any]
) -> Any:
    return await master.request(action, target, data, **options)
