"""Cancelled requests a child still holds, and what the master does about a stuck one.

A request the master gave up on (its timeout, its caller's cancellation) is sent CANCEL
when the child stated protocol 1.1 in READY (CANCEL-1). The child still owes it an
answer (CANCEL-5): a 499 once the handler stopped, or the handler's own if it finished
anyway. A handler with no answer ``cancel_grace`` ms after its CANCEL is **stuck**: it
ignores cancellation (a sync handler that never looks at its context, a C call). Its
worker is then dealt with as its ``on_stuck`` policy says (the child's, else its
group's, else the master's):

- ``"replace"`` (the default): stop the process and start a new one from the same spawn
  arguments; what else it held fails with PeepsyProcessError, under the usual retry
  rules. A stuck handler may never return: in a sequential child everything queued
  behind it would wait for nothing, and even a concurrent one loses a slot for good.
- ``"rotate-out"``: leave the process alone, out of its group's rotation until the stuck
  request is answered (for handlers known to end, whose work must not be cut short).

A child that stated 1.0 (the Node original among them) is never sent CANCEL, so never
judged by this rule; issue 10's stall rule (``stall_grace``) still applies to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

from peepsy.master._events import Emitter, StuckEvent

if TYPE_CHECKING:
    from peepsy.master._groups import Group
    from peepsy.master._worker import Worker

OnStuck = Literal["replace", "rotate-out"]
ON_STUCK: Final[tuple[OnStuck, ...]] = ("replace", "rotate-out")
#: How long after its CANCEL a handler may run on before it is stuck (ms).
DEFAULT_CANCEL_GRACE: Final = 2000

log = logging.getLogger("peepsy.master")


def check_on_stuck(value: object) -> None:
    if not isinstance(value, str) or value not in ON_STUCK:
        raise ValueError(f"on_stuck is 'replace' or 'rotate-out', not {value!r}")


class CancelWatch:
    """The requests one process was sent CANCEL for and has not answered yet, with the
    grace each has left; and the counts a worker's stats show."""

    __slots__ = ("_grace", "_judge", "_pending", "acknowledged", "held", "sent", "stuck")

    def __init__(self, grace: float, judge: Callable[[str, str], None]) -> None:
        self._grace = grace
        self._judge = judge
        #: Cancelled and unanswered: request id -> (action, grace timer; None once stuck).
        self._pending: dict[str, tuple[str, asyncio.TimerHandle | None]] = {}
        #: Stuck ones a rotate-out policy keeps the worker out of rotation for.
        self.held: set[str] = set()
        self.sent = 0
        self.acknowledged = 0
        self.stuck = 0

    def start(self, request_id: str, action: str) -> None:
        """A CANCEL for ``request_id`` was written, or it timed out at a child that
        cannot be told and is judged all the same: its handler has the grace to end."""
        timer = asyncio.get_running_loop().call_later(self._grace, self._over, request_id)
        self._pending[request_id] = (action, timer)

    def _over(self, request_id: str) -> None:
        entry = self._pending.get(request_id)
        if entry is None:  # pragma: no cover - an answer cancels the timer
            return
        self._pending[request_id] = (entry[0], None)
        self._judge(request_id, entry[0])

    def answered(self, request_id: str, *, told: bool = True) -> bool:
        """The answer to a cancelled request came (``told``: to a CANCEL, counted as
        acknowledged; else a late answer to one judged without CANCEL); whether the
        worker was held out of rotation for it (and no longer is for any)."""
        if told:
            self.acknowledged += 1
        entry = self._pending.pop(request_id, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()
        if request_id in self.held:
            self.held.discard(request_id)
            return not self.held
        return False

    def hold(self, request_id: str) -> bool:
        """Rotate-out: keep the worker out until ``request_id`` is answered; whether
        this took it out (it was held for no other)."""
        first = not self.held
        self.held.add(request_id)
        return first

    def clear(self) -> None:
        """The process is gone, and the requests it held with it."""
        for _, timer in self._pending.values():
            if timer is not None:
                timer.cancel()
        self._pending.clear()
        self.held.clear()


class StuckPolicy:
    """The master's answer to a stuck handler: whose policy applies, the event, the act."""

    def __init__(
        self,
        default: OnStuck,
        groups: dict[str, Group],
        emitter: Emitter,
        replace: Callable[[Worker], None],
    ) -> None:
        self.default: OnStuck = default
        self._groups = groups
        self._emitter = emitter
        self._replace = replace

    def policy_of(self, worker: Worker) -> OnStuck:
        if worker.on_stuck is not None:
            return worker.on_stuck
        group = self._groups.get(worker.group) if worker.group is not None else None
        if group is not None and group.on_stuck is not None:
            return group.on_stuck
        return self.default

    def __call__(self, worker: Worker, request_id: str, action: str) -> None:
        policy = self.policy_of(worker)
        log.warning(
            "%s still runs %r (%s) after its CANCEL; %s",
            worker.target,
            action,
            request_id,
            "replacing it" if policy == "replace" else "out of rotation until it answers",
        )
        self._emitter.emit("stuck", StuckEvent(worker.target, request_id, action, policy))
        if policy == "replace":
            self._replace(worker)
        else:
            worker.take_out(request_id)
