"""A master for plain (sync) tests: :class:`WorkerHarness` owns an event loop and a
:class:`peepsy.Master` on it, and every call it offers waits on that loop, bounded.

pytest runs plain test functions without an event loop, and peepsy does not depend on
pytest-asyncio or anyio: a sync harness works in any project. Async tests use the
master directly in their own loop (docs/testing.md).
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import shutil
import tempfile
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from peepsy.testing._recording import WireRecording, tap_command

if TYPE_CHECKING:
    from peepsy.master import Master, Reply

T = TypeVar("T")

#: No call of a test may wait longer than this (seconds): a hang becomes a failure.
DEFAULT_LIMIT_S = 60.0


class WorkerHarness:
    """A :class:`peepsy.Master` on an event loop of its own. ``master_options`` go to
    ``Master(...)``; ``limit`` bounds every wait, in seconds. Use it as a context
    manager (the ``peepsy_master`` fixture does): leaving shuts every worker down."""

    def __init__(self, *, limit: float = DEFAULT_LIMIT_S, **master_options: Any) -> None:
        self.limit = limit
        self._options = master_options
        self._runner = asyncio.Runner()
        self._master: Master[Any, Any] | None = None
        self._names = itertools.count(1)
        self._tmp: Path | None = None
        self._stopped: set[str] = set()

    def __enter__(self) -> WorkerHarness:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def master(self) -> Master[Any, Any]:
        """The master, made on first use (on the harness's loop)."""
        if self._master is None:
            self._master = self.run(self._start())
        return self._master

    async def _start(self) -> Master[Any, Any]:
        from peepsy.master import Master  # noqa: PLC0415 - loaded with the first worker

        master: Master[Any, Any] = Master(**self._options)
        return await master.__aenter__()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Awaits ``awaitable`` on the master's loop, for at most ``limit`` seconds
        (then :class:`TimeoutError`)."""
        return self._runner.run(_bounded(awaitable, self.limit))

    def spawn(
        self,
        command: str | Sequence[str],
        name: str | None = None,
        mode: str = "sequential",
        *,
        record: bool = False,
        **spawn_options: Any,
    ) -> Worker:
        """Starts ``command`` (an argv list, or a string split like a shell would) as
        child ``name`` (``worker1``, ``worker2``... by default) and waits for it to be
        up; ``spawn_options`` go to :meth:`peepsy.Master.spawn_child`. With ``record``
        the worker runs behind the recording tap: :meth:`Worker.recording` gives its
        lines."""
        name = name or f"worker{next(self._names)}"
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        tap: Path | None = None
        if record:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="peepsy-wire-"))
            tap = self._tmp / f"{name}.raw.ndjson"
            argv = tap_command(argv, tap)
        master = self.master
        self.run(master.spawn_child(name, argv, mode, **spawn_options))  # type: ignore[arg-type]
        return Worker(self, name, tap)

    def close(self) -> None:
        """Shuts every worker down and closes the loop (idempotent)."""
        try:
            if self._master is not None:
                master, self._master = self._master, None
                # Its own bound: shutting down a busy worker takes its grace periods, and
                # a test that lowered ``limit`` must still leave no process behind.
                limit = max(self.limit, DEFAULT_LIMIT_S)
                self._runner.run(_bounded(master.__aexit__(None, None, None), limit))
        finally:
            self._runner.close()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None


async def _bounded(awaitable: Awaitable[T], limit: float) -> T:
    return await asyncio.wait_for(awaitable, limit)


@dataclass(frozen=True, slots=True)
class Worker:
    """A started child of a :class:`WorkerHarness`, by name."""

    harness: WorkerHarness
    name: str
    tap: Path | None = None

    def request(self, action: Any, data: Any = None, **options: Any) -> Reply[Any]:
        """``master.request(action, name, data, **options)``, awaited: the
        :class:`peepsy.Reply`, or the typed error the master raises."""
        master = self.harness.master
        return self.harness.run(master.request(action, self.name, data, **options))

    def stop(self, timeout: int = 5000) -> int | None:
        """Shuts the worker down (SHUTDOWN, then signals after ``timeout`` ms); its exit
        status."""
        code = self.harness.run(self.harness.master.shutdown_child(self.name, timeout))
        self.harness._stopped.add(self.name)
        return code

    def recording(
        self,
        *,
        sent: bool = False,
        heartbeats: bool = False,
        mask: bool = True,
        mask_ids: bool = False,
    ) -> WireRecording:
        """What the worker wrote (see :meth:`WireRecording.from_events`), from start to
        exit: this stops the worker first, so that nothing it writes is missed."""
        if self.tap is None:
            raise RuntimeError(f"{self.name} was not spawned with record=True")
        if self.name not in self.harness._stopped:
            self.stop()
        return WireRecording.load(
            self.tap, sent=sent, heartbeats=heartbeats, mask=mask, mask_ids=mask_ids
        )
