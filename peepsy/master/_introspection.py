"""What a master tells about its children and groups: stats, health, stderr."""

from __future__ import annotations

from peepsy._errors import PeepsyNotFoundError
from peepsy.master._groups import Group
from peepsy.master._stats import GroupStats, ProcessStats
from peepsy.master._worker import Worker


class Introspection:
    """The read-only part of :class:`~peepsy.Master`, over its tables."""

    _workers: dict[str, Worker]
    _groups: dict[str, Group]

    def _worker(self, target: str) -> Worker:
        worker = self._workers.get(target)
        if worker is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {target}")
        return worker

    def get_process_stats(self, target: str) -> ProcessStats:
        """A snapshot of one child's state and counters.

        Raises:
            PeepsyNotFoundError: no child has this target.
        """
        return process_stats(self._worker(target))

    def get_group_stats(self, group: str) -> GroupStats:
        """A snapshot of a group: its policy, its load and each member's stats.

        Raises:
            PeepsyNotFoundError: no group has this name.
        """
        g = self._groups.get(group)
        if g is None:
            raise PeepsyNotFoundError(f"No process found for target or group: {group}")
        processes = {w.target: process_stats(w) for w in g.members}
        return GroupStats(
            group=group,
            strategy=g.strategy,
            max_concurrency=g.max_concurrency,
            auto_restart=g.auto_restart,
            total_requests=sum(p.requests_handled for p in processes.values()),
            active_requests=g.active,
            queued_requests=g.queued,
            processes=processes,
        )

    def get_unhealthy_processes(self) -> list[str]:
        """The targets of the children judged unhealthy (heartbeats missed, or stuck)."""
        return [t for t, w in self._workers.items() if w.status == "unhealthy"]

    def is_process_alive(self, target: str) -> bool:
        """Whether ``target`` names a child whose process is running (``False`` for an unknown
        target, never an error)."""
        worker = self._workers.get(target)
        return worker is not None and worker.alive

    def get_active_requests_count(self) -> int:
        """Requests sent to children and not yet settled, over all children."""
        return sum(w.in_flight for w in self._workers.values())

    @property
    def active_requests(self) -> int:
        """Requests sent to children and not yet settled, over all children."""
        return self.get_active_requests_count()

    @property
    def targets(self) -> list[str]:
        """The targets of every child, in the order they were spawned."""
        return list(self._workers)

    def get_stderr(self, target: str) -> list[str]:
        """The last lines a child wrote to stderr (``stderr="capture"`` or ``"log"``)."""
        return list(self._worker(target).stderr_tail)


def process_stats(worker: Worker) -> ProcessStats:
    """One child's statistics, as :meth:`~peepsy.Master.get_process_stats` gives them."""
    transport = worker.transport
    return ProcessStats(
        target=worker.target,
        group=worker.group,
        mode=worker.mode,
        pid=transport.pid if transport is not None else None,
        status=worker.status,
        requests_handled=worker.requests_handled,
        requests_active=worker.in_flight,
        average_response_time=round(worker.avg_response, 3),
        last_activity=worker.last_activity,
        errors=worker.errors,
        timeouts=worker.timeouts,
        last_heartbeat_at=worker.last_heartbeat_wall,
        restarts=worker.restarts,
        rejected_lines=worker.rejected_lines,
        late_responses=worker.late_responses,
        actions=worker.actions,
        reported_active=worker.reported_active,
        ready=worker.ready,
        stalled=worker.stalled,
        in_rotation=worker.available,
        cancels_sent=worker.cancels.sent,
        cancels_acknowledged=worker.cancels.acknowledged,
        stuck=worker.cancels.stuck,
        replacements=worker.replacements,
    )
