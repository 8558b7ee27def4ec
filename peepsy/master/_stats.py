"""Statistics snapshots (plain, frozen records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

T = TypeVar("T")

ProcessStatus = Literal[
    "starting", "running", "unhealthy", "restarting", "stopping", "stopped", "failed"
]
Strategy = Literal["round-robin", "random", "least-busy"]


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """A snapshot of one child (:meth:`Master.get_process_stats`): who it is, its state and
    its counters. Times are wall-clock milliseconds, durations milliseconds."""

    target: str
    group: str | None
    mode: str
    pid: int | None
    status: ProcessStatus
    requests_handled: int
    """Requests this child answered (any status)."""
    requests_active: int
    """Requests sent to it and not yet answered, failed or timed out."""
    average_response_time: float
    """Exponential moving average (alpha 0.2) of response times, ms."""
    last_activity: int | None
    """Wall-clock ms of the last message from the child."""
    errors: int
    """Failed requests: failure answers, timeouts and requests lost with the process."""
    timeouts: int
    last_heartbeat_at: int | None
    """Wall-clock ms of the last HEARTBEAT, None if it never sent one."""
    restarts: int
    rejected_lines: int
    """Lines from the child that broke the protocol (logged and dropped)."""
    late_responses: int
    """Answers that arrived after their request had timed out (dropped)."""
    actions: tuple[str, ...] | None
    """What the child announced in READY, if it sent one."""
    reported_active: int | None = None
    """``requestsActive`` of its last HEARTBEAT (requests running or queued at the child,
    timed-out ones included); None before one says."""
    ready: bool = True
    """A restarted child is ready once it sent READY or a HEARTBEAT, or after the
    master's ``startup_grace``; a group sends it nothing before."""
    stalled: bool = False
    """It holds a request past the request's deadline by more than ``stall_grace``."""
    in_rotation: bool = False
    """A group may pick it now: running, ready, not stalled and not taken out as stuck."""
    cancels_sent: int = 0
    """CANCELs sent to it (only a child that stated protocol 1.1 is sent any): for
    requests that timed out, whose caller was cancelled, or at a shutdown's deadline."""
    cancels_acknowledged: int = 0
    """Answers to cancelled requests: a 499, or the handler's own answer if it finished
    anyway (not counted in ``late_responses``)."""
    stuck: int = 0
    """Handlers still running ``cancel_grace`` ms after their CANCEL."""
    replacements: int = 0
    """Processes the master stopped and started afresh because a handler was stuck
    (each also counted in ``restarts``)."""


@dataclass(frozen=True, slots=True)
class GroupStats:
    """A snapshot of one group (:meth:`Master.get_group_stats`): its policy, its load
    (requests running and waiting for a free slot) and each member's
    :class:`ProcessStats` by target."""

    group: str
    strategy: Strategy
    max_concurrency: int | None
    auto_restart: bool
    total_requests: int
    active_requests: int
    queued_requests: int
    processes: dict[str, ProcessStats] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A successful answer: its status (< 400), data, request id, and who answered."""

    status: int
    data: T
    id: str
    target: str
    action: str


# A frozen dataclass's __init__ sets each field through object.__setattr__: about 600 ns
# for Reply's five on the development machine, against about 250 ns for filling the
# slots through their descriptors, and the master builds one Reply per answer.
_new_reply: Final = object.__new__
_set_status: Final = vars(Reply)["status"].__set__
_set_data: Final = vars(Reply)["data"].__set__
_set_id: Final = vars(Reply)["id"].__set__
_set_target: Final = vars(Reply)["target"].__set__
_set_action: Final = vars(Reply)["action"].__set__


def make_reply(status: int, data: T, rid: str, target: str, action: str) -> Reply[T]:
    """``Reply(status, data, rid, target, action)``, built faster: the same frozen
    instance, equal to one built by the class (tests/master/test_reply.py)."""
    reply: Reply[T] = _new_reply(Reply)
    _set_status(reply, status)
    _set_data(reply, data)
    _set_id(reply, rid)
    _set_target(reply, target)
    _set_action(reply, action)
    return reply
