"""Restarting and stopping: the part of :class:`~peepsy.Master` that ends what it started.

A mixin over the master's tables and parts (declared below), as ``Introspection`` is;
on top of it, since stopping a child needs to find it.
"""

from __future__ import annotations

import asyncio

from peepsy._errors import PeepsyShutdownError
from peepsy.master._groups import Group
from peepsy.master._introspection import Introspection
from peepsy.master._routing import Router
from peepsy.master._spawner import Spawner
from peepsy.master._supervisor import Supervisor
from peepsy.master._worker import Worker


class Lifecycle(Introspection):
    _closing: bool
    _workers: dict[str, Worker]
    _groups: dict[str, Group]
    _router: Router
    _spawner: Spawner
    _supervisor: Supervisor

    def _may_restart(self, worker: Worker) -> bool:
        group = self._groups.get(worker.group) if worker.group else None
        return worker.auto_restart and (group is None or group.auto_restart)

    def _forget(self, worker: Worker) -> None:
        self._workers.pop(worker.target, None)
        self._supervisor.forget(worker)
        group = self._groups.get(worker.group) if worker.group else None
        if group is not None and worker in group.members:
            group.members.remove(worker)

    # --- restarting ------------------------------------------------------------------

    async def restart_child(self, target: str) -> list[str]:
        """Start again a child, or the members of a group, left ``failed`` (over the
        restart limit, or a restart that could not start), with a fresh restart count;
        a ``rearm`` event each. Members that run (or are starting) are left alone.
        Returns the targets restarted, once each is started or could not be (then
        ``failed`` again, with an ``error`` event)."""
        if self._closing:
            raise PeepsyShutdownError("the master is shutting down")
        group = self._groups.get(target)
        workers = group.members if group is not None else [self._worker(target)]
        failed = [w for w in workers if w.status == "failed"]
        await asyncio.gather(*(self._supervisor.rearm(w, "manual") for w in failed))
        return [w.target for w in failed]

    # --- stopping (SHUT-3) --------------------------------------------------------------

    async def shutdown_child(self, target: str, timeout: int = 5000) -> int | None:
        """Ask a child to stop and wait; escalate at the deadline: CANCEL what it still
        runs (a child that stated protocol 1.1; the shorter of ``cancel_grace`` and one
        second), then close its stdin, then SIGTERM, then SIGKILL (one second each).
        Returns its exit status. The target is removed."""
        worker = self._worker(target)
        worker.stop_requested = True
        code = await self._spawner.stop(worker, timeout)
        if worker.status != "stopped":
            worker.move("stopped")
        self._forget(worker)
        return code

    async def graceful_shutdown(self, timeout: int = 30_000) -> None:
        """Stop every child (in parallel, each as :meth:`shutdown_child`), fail requests
        still waiting for group capacity, answer the children's new requests 503, and
        stop supervising."""
        self._closing = True
        self._router.close()
        workers = list(self._workers.values())
        self._supervisor.close()
        for group in self._groups.values():
            group.fail_waiters()
        for worker in self._workers.values():
            if worker.session is not None:
                worker.session.server.close()
        # A respawn under way finishes first, so that its new process is stopped below
        # like the others instead of outliving the master.
        await self._supervisor.settle_restarts()
        targets = list(self._workers)
        if targets:
            await asyncio.gather(
                *(self.shutdown_child(t, timeout) for t in targets), return_exceptions=True
            )
        for worker in workers:  # handlers of ours still serving a child's request
            if worker.session is not None:
                worker.session.server.abandon()
        await self._spawner.close()
