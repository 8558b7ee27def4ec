"""A stand-in for ``_wirechecks.py`` (the wire checks, written on another branch) with
two of its checks, so that the engine runs end to end before they land. It has the same
shape: ``WIRE_CHECKS`` and ``judge_wire(records) -> list[WireResult]``. Delete it once
``_wirechecks.py`` is in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peepsy.conformance._schemas import schema_errors
from peepsy.conformance.master._record import ChannelRecord


@dataclass(frozen=True, slots=True)
class WireCheck:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str


@dataclass(slots=True)
class WireResult:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str
    verdict: str
    message: str
    count: int


WIRE_CHECKS = (
    WireCheck(
        "m.frame.json",
        ("FRAME-1", "FRAME-3"),
        "MUST",
        "every line the master writes is one JSON object in valid UTF-8",
    ),
    WireCheck(
        "m.msg.schema-valid",
        ("MSG-2", "MSG-3", "MSG-7", "ID-1"),
        "MUST",
        "each message valid against schema/master-message.json",
    ),
)


def judge_wire(records: Sequence[ChannelRecord]) -> list[WireResult]:
    found: dict[str, list[str]] = {c.check: [] for c in WIRE_CHECKS}
    lines = 0
    for record in records:
        for number, event in enumerate(e for e in record.events if e.kind == "line"):
            lines += 1
            where = f"{record.case}: {record.name}#{record.incarnation} line {number + 1}"
            if event.message is None:
                found["m.frame.json"].append(f"{where}: not a JSON object: {event.data[:80]!r}")
            elif problems := schema_errors("master-message.json", event.message):
                found["m.msg.schema-valid"].append(f"{where}: {problems[0]}")
    out = []
    for check in WIRE_CHECKS:
        faults = found[check.check]
        verdict = "untestable" if not lines else ("fail" if faults else "pass")
        message = (
            "not testable: the master wrote no line"
            if not lines
            else f"{faults[0]} ({len(faults)} in all)"
            if faults
            else ""
        )
        out.append(
            WireResult(
                check.check,
                check.requirement,
                check.severity,
                check.description,
                verdict,
                message,
                len(faults),
            )
        )
    return out
