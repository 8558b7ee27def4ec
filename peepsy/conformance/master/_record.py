"""What the suite saw on one child channel: the record every master check is judged
from. The hub appends to it as bytes, ends of input, signals and exits arrive; the wire
checks read it after the case. Kept free of I/O so the checks can be tested on records
built by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "line",  # a whole line the master wrote to the child's stdin (bytes include the b"\n")
    "partial",  # bytes the master left without a b"\n" when it closed the child's stdin
    "sent",  # a line the child (the suite) wrote to the master (bytes include the b"\n")
    "eof",  # the master closed the child's stdin
    "signal",  # the child caught a signal (``value`` is its number)
    "exit",  # the child exited on the suite's word (``value`` is the status)
    "killed",  # the child vanished without a goodbye: SIGKILL (or a crash of the stub)
]


@dataclass(slots=True)
class Event:
    kind: EventKind
    at: float  # the suite's monotonic clock, seconds
    data: bytes = b""
    value: int | None = None
    message: dict[str, Any] | None = None  # the parsed JSON object of a line, when it is one


@dataclass(slots=True)
class ChannelRecord:
    """One incarnation of one child: ``name`` as the case spawned it, ``incarnation``
    counting from 1 (a restart by the master is the next incarnation)."""

    case: str  # the check id of the case that produced it
    name: str
    incarnation: int
    pid: int
    events: list[Event] = field(default_factory=list)
