"""The wire checks of a master: rules every line it writes keeps, judged once over the
record of every case (every channel the suite saw), so that one defect is one failure
of its check and not of every case it shows in.

Each check reads the channels through a finder that returns how many things it judged
and the places that offend; nothing judged is ``untestable``, never a pass. Rules that
depend on what the master had read are judged from what it provably had: the suite
records a line it sends a child before the child writes it, so a master line recorded
after it may have followed it, and one recorded before cannot have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from peepsy.conformance.master._record import ChannelRecord
from peepsy.conformance.master._wiredialogue import Findings, judge_dialogue
from peepsy.conformance.master._wirelines import (
    BOM,
    MASTER_TYPES,
    ChildLine,
    MasterLine,
    message_problem,
    read_child_line,
    read_master_line,
)

WireVerdict = Literal["pass", "fail", "warn", "untestable"]


class WireCheck(NamedTuple):
    check: str
    level: str
    severity: str
    requirement: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class WireResult:
    """What one wire check came to over every channel. ``message`` names the first
    offending place and how many more there are; ``count`` is how many offend."""

    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str
    verdict: WireVerdict
    message: str
    count: int = 0


def _check(check: str, severity: str, requirement: str, description: str) -> WireCheck:
    return WireCheck(check, "wire", severity, tuple(requirement.split()), description)


#: The wire checks, in the order they are reported.
WIRE_CHECKS: list[WireCheck] = [
    _check(
        "m.frame.json",
        "MUST",
        "FRAME-1 FRAME-3",
        "every line the master writes is one JSON object in valid UTF-8",
    ),
    _check(
        "m.frame.terminated",
        "MUST",
        "FRAME-2",
        "no partial line left when the master closes a child's stdin",
    ),
    _check("m.frame.no-cr", "MUST", "FRAME-4", "no CR before LF"),
    _check("m.frame.no-bom", "MUST", "FRAME-7", "no BOM"),
    _check(
        "m.msg.schema-valid",
        "MUST",
        "MSG-2 MSG-3 MSG-7 ID-1",
        "each message valid against schema/master-message.json",
    ),
    _check("m.msg.role", "MUST", "MSG-6", "only INIT, REQUEST, RESPONSE, SHUTDOWN, CANCEL"),
    _check(
        "m.init.first-once",
        "MUST",
        "INIT-1 MASTER-4",
        "the first line to every incarnation is INIT, and INIT comes once",
    ),
    _check(
        "m.id.unique-outstanding",
        "MUST",
        "ID-2",
        "no REQUEST id reused on a channel while outstanding",
    ),
    _check("m.id.not-reused", "SHOULD", "ID-2", "no REQUEST id reused on a channel at all"),
    _check(
        "m.cancel.only-when-allowed",
        "MUST",
        "CANCEL-1",
        "CANCEL only for an outstanding own REQUEST, to a child whose READY stated 1.1+",
    ),
    _check(
        "m.resp.matches-request",
        "MUST",
        "RESP-1 ID-4",
        "each RESPONSE the master writes answers a child REQUEST it read, once",
    ),
]


@dataclass(slots=True)
class _Channel:
    """One record, read: the master's lines, and both directions in the order seen."""

    record: ChannelRecord
    lines: list[MasterLine] = field(default_factory=list)
    timeline: list[MasterLine | ChildLine] = field(default_factory=list)
    #: Bytes the master left unterminated at its end of input, after which line.
    partials: list[tuple[int, bytes]] = field(default_factory=list)
    closed: bool = False
    #: Findings of the checks judged in one pass over the dialogue (ids, CANCEL, answers).
    dialogue: dict[str, Findings] = field(default_factory=dict)

    def where(self, line: int) -> str:
        r = self.record
        return f"case {r.case}, child {r.name} (incarnation {r.incarnation}), line {line}"


def _read(record: ChannelRecord) -> _Channel:
    channel = _Channel(record)
    pending = b""
    index = 0
    for event in record.events:
        if event.kind == "line":
            line = read_master_line(len(channel.lines) + 1, event.data)
            channel.lines.append(line)
            channel.timeline.append(line)
        elif event.kind == "sent":
            # Split here rather than trust one event to be one line: the master reads a
            # stream, and a case may write raw bytes.
            *whole, pending = (pending + event.data).split(b"\n")
            for body in whole:
                channel.timeline.append(read_child_line(index, body))
                index += 1
        elif event.kind == "partial":
            channel.partials.append((len(channel.lines), event.data))
        elif event.kind == "eof":
            channel.closed = True
    channel.dialogue = judge_dialogue(channel.timeline, channel.where)
    return channel


def judge_wire(records: Sequence[ChannelRecord]) -> list[WireResult]:
    """Every wire check over every channel of a run, in :data:`WIRE_CHECKS` order."""
    channels = [_read(record) for record in records]
    results = []
    for check in WIRE_CHECKS:
        finder, nothing = _FINDERS[check.check]
        found = Findings()
        for channel in channels:
            one = finder(channel)
            found.judged += one.judged
            found.places += one.places
        results.append(_result(check, found, nothing))
    return results


def _result(check: WireCheck, found: Findings, nothing: str) -> WireResult:
    verdict: WireVerdict
    count = len(found.places)
    if count:
        verdict = "fail" if check.severity == "MUST" else "warn"
        more = f" (and {count - 1} more)" if count > 1 else ""
        message = found.places[0] + more
    elif found.judged:
        verdict, message = "pass", ""
    else:
        verdict, message = "untestable", f"not testable: {nothing} in any case"
    return WireResult(
        check.check,
        check.requirement,
        check.severity,
        check.description,
        verdict,
        message,
        count,
    )


def _frame_json(channel: _Channel) -> Findings:
    found = Findings()
    for line in channel.lines:
        if line.blank:
            continue
        found.judged += 1
        if line.problem is not None:
            found.places.append(f"{channel.where(line.number)}: {line.problem}: {_show(line)}")
    return found


def _terminated(channel: _Channel) -> Findings:
    found = Findings(judged=int(channel.closed or bool(channel.partials)))
    for after, data in channel.partials:
        if data.strip():
            found.places.append(
                f"{channel.where(after + 1)}: the master ended the child's input inside a"
                f" line, without its LF: {data[:80]!r}"
            )
    return found


def _each_line(test: Callable[[bytes], bool], what: str) -> Callable[[_Channel], Findings]:
    def finder(channel: _Channel) -> Findings:
        found = Findings(judged=len(channel.lines))
        for line in channel.lines:
            if test(line.raw):
                found.places.append(f"{channel.where(line.number)}: {what}: {_show(line)}")
        return found

    return finder


def _schema_valid(channel: _Channel) -> Findings:
    found = Findings()
    for line in channel.lines:
        value = line.value
        if not isinstance(value, dict):
            continue  # not an object: m.frame.json's
        kind = value.get("type")
        if isinstance(kind, str) and kind not in MASTER_TYPES:
            continue  # a type the master must not send: m.msg.role's
        found.judged += 1
        problem = (
            message_problem(value)
            if isinstance(kind, str)
            else "a message without a string member `type` (MSG-1)"
        )
        if problem is not None:
            found.places.append(f"{channel.where(line.number)}: {problem}")
    return found


def _role(channel: _Channel) -> Findings:
    found = Findings()
    for line in channel.lines:
        message = line.message
        if message is None:
            continue
        found.judged += 1
        if message["type"] not in MASTER_TYPES:
            found.places.append(
                f"{channel.where(line.number)}: a {message['type']!r} message; a master sends"
                " only INIT, REQUEST, RESPONSE, SHUTDOWN and CANCEL"
            )
    return found


def _init_first_once(channel: _Channel) -> Findings:
    messages = [line for line in channel.lines if line.message is not None]
    found = Findings(judged=int(bool(messages)))
    first_init: int | None = None
    for position, line in enumerate(messages):
        kind = line.message["type"] if line.message else None
        if position == 0 and kind != "INIT":
            found.places.append(
                f"{channel.where(line.number)}: the first message to this incarnation is"
                f" {kind}, not INIT"
            )
        if kind != "INIT":
            continue
        if first_init is None:
            first_init = line.number
        else:
            found.places.append(
                f"{channel.where(line.number)}: a second INIT (the first was line {first_init})"
            )
    return found


def _dialogue(check: str) -> Callable[[_Channel], Findings]:
    return lambda channel: channel.dialogue[check]


def _show(line: MasterLine) -> str:
    return repr(line.raw[:80]) + ("..." if len(line.raw) > 80 else "")


#: Each check's finder, and what there was none of when nothing was judged.
_FINDERS: dict[str, tuple[Callable[[_Channel], Findings], str]] = {
    "m.frame.json": (_frame_json, "no line from the master"),
    "m.frame.terminated": (_terminated, "no end of input from the master"),
    "m.frame.no-cr": (
        _each_line(lambda raw: raw.endswith(b"\r\n"), "a CR before the LF"),
        "no line from the master",
    ),
    "m.frame.no-bom": (
        _each_line(lambda raw: raw.startswith(BOM), "a byte-order mark"),
        "no line from the master",
    ),
    "m.msg.schema-valid": (_schema_valid, "no message from the master"),
    "m.msg.role": (_role, "no message from the master"),
    "m.init.first-once": (_init_first_once, "no message from the master"),
    "m.id.unique-outstanding": (
        _dialogue("m.id.unique-outstanding"),
        "no REQUEST from the master",
    ),
    "m.id.not-reused": (_dialogue("m.id.not-reused"), "no REQUEST from the master"),
    "m.cancel.only-when-allowed": (
        _dialogue("m.cancel.only-when-allowed"),
        "no CANCEL from the master and no child stating protocol 1.1",
    ),
    "m.resp.matches-request": (
        _dialogue("m.resp.matches-request"),
        "no RESPONSE from the master",
    ),
}
