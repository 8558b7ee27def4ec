"""The wire checks that follow both directions of a channel, judged in one pass over it:
m.id.unique-outstanding and m.id.not-reused (the master's REQUEST ids),
m.cancel.only-when-allowed (CANCEL-1) and m.resp.matches-request (RESP-1, ID-4).

What the master had read decides some of them, and the suite cannot see when it read a
line. It can see what the master provably had read: the suite records a line it sends a
child before the child writes it, and the pipe keeps order, so a master that answers a
child's REQUEST had read every line the child wrote before it. A rule is judged broken
only on that proof, never on how close two lines came: the checks cannot race.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from peepsy.conformance.master._wirelines import (
    ChildLine,
    MasterLine,
    readable_id,
    states_modern_protocol,
)

UNIQUE = "m.id.unique-outstanding"
REUSED = "m.id.not-reused"
CANCEL = "m.cancel.only-when-allowed"
ANSWERS = "m.resp.matches-request"


@dataclass(slots=True)
class Findings:
    """What a check found on one channel: how many things it judged, and the places
    that offend, each in words."""

    judged: int = 0
    places: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Dialogue:
    where: Callable[[int], str]
    found: dict[str, Findings] = field(
        default_factory=lambda: {check: Findings() for check in (UNIQUE, REUSED, CANCEL, ANSWERS)}
    )
    #: The master's REQUEST ids the child has not answered, with the line that asked.
    outstanding: dict[str, int] = field(default_factory=dict)
    #: Every id the master asked on this channel.
    asked: set[str] = field(default_factory=set)
    #: The master's ids the child answered, with the child line that answered.
    answered_at: dict[str, int] = field(default_factory=dict)
    #: The child's REQUEST ids the master has not answered, with the child line.
    child_open: dict[str, int] = field(default_factory=dict)
    child_answered: set[str] = field(default_factory=set)
    #: The last child line the master provably read.
    read_up_to: int = -1
    #: Whether a valid READY stated protocol 1.1 or later (CANCEL-1).
    modern: bool = False

    def place(self, check: str, line: MasterLine, what: str) -> None:
        self.found[check].places.append(f"{self.where(line.number)}: {what}")

    def child(self, line: ChildLine) -> None:
        value = line.value
        kind = value.get("type") if isinstance(value, dict) else None
        if line.request_id is not None:
            # A duplicate of an open id is not served (ID-2): it asks for no answer.
            self.child_open.setdefault(line.request_id, line.index)
        elif kind == "RESPONSE":
            rid = value.get("id")
            # Any RESPONSE naming an outstanding id settles it, even an invalid one (MSG-9).
            if isinstance(rid, str) and self.outstanding.pop(rid, None) is not None:
                self.answered_at[rid] = line.index
        elif not self.modern and states_modern_protocol(value):
            self.modern = True
            self.found[CANCEL].judged += 1  # the master may now cancel: judged either way

    def request(self, line: MasterLine, message: dict[str, Any]) -> None:
        rid = readable_id(message)
        if rid is None:
            return  # no id a child could read: m.msg.schema-valid's
        self.found[UNIQUE].judged += 1
        self.found[REUSED].judged += 1
        if rid in self.outstanding:
            self.place(
                UNIQUE,
                line,
                f"REQUEST id {rid!r} again while the REQUEST of line"
                f" {self.outstanding[rid]} with it awaits its RESPONSE",
            )
        elif rid in self.asked:
            self.place(REUSED, line, f"REQUEST id {rid!r} used again on this channel")
        self.outstanding[rid] = line.number
        self.asked.add(rid)

    def response(self, line: MasterLine, message: dict[str, Any]) -> None:
        self.found[ANSWERS].judged += 1
        rid = message.get("id")
        if not isinstance(rid, str):
            return  # m.msg.schema-valid's
        if rid in self.child_open:
            self.read_up_to = max(self.read_up_to, self.child_open.pop(rid))
            self.child_answered.add(rid)
        elif rid in self.child_answered:
            self.place(ANSWERS, line, f"a second RESPONSE to the child's REQUEST {rid!r}")
        else:
            self.place(
                ANSWERS,
                line,
                f"a RESPONSE to {rid!r}, which the child never asked (no REQUEST with that"
                " readable id came before it on this channel)",
            )

    def cancel(self, line: MasterLine, message: dict[str, Any]) -> None:
        self.found[CANCEL].judged += 1
        rid = message.get("id")
        if not self.modern:
            self.place(
                CANCEL,
                line,
                f"CANCEL {rid!r} to a child whose READY has not stated protocol 1.1 or later",
            )
        elif not isinstance(rid, str) or rid in self.outstanding:
            return
        elif rid not in self.asked:
            self.place(CANCEL, line, f"CANCEL {rid!r} names no REQUEST the master sent")
        elif self.answered_at[rid] <= self.read_up_to:
            # Otherwise the master may not have read the answer yet: CANCEL-1 allows it.
            self.place(
                CANCEL,
                line,
                f"CANCEL {rid!r} after the master had read its RESPONSE (it had answered a"
                " REQUEST the child wrote after that RESPONSE)",
            )


def judge_dialogue(
    timeline: Sequence[MasterLine | ChildLine], where: Callable[[int], str]
) -> dict[str, Findings]:
    """The findings of the four checks on one channel, from both directions in the
    order the suite saw them; ``where`` names a master line by its number."""
    dialogue = _Dialogue(where)
    handlers = {
        "REQUEST": dialogue.request,
        "RESPONSE": dialogue.response,
        "CANCEL": dialogue.cancel,
    }
    for item in timeline:
        if isinstance(item, ChildLine):
            dialogue.child(item)
        elif (message := item.message) is not None and message["type"] in handlers:
            handlers[message["type"]](item, message)
    return dialogue.found
