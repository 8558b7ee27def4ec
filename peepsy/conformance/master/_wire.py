"""The wire checks (``m.frame.*``, ``m.msg.*``, ``m.init.*``, ``m.id.*``,
``m.cancel.only-when-allowed``, ``m.resp.matches-request``) as report outcomes: judged
once over the records of every case (or of an observed application), so that one defect
is one failure. The checks themselves are in ``_wirechecks.py``; this module turns
their rows and results into :class:`Outcome`s with level ``wire``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peepsy.conformance._transcript import Outcome, Verdict
from peepsy.conformance.master._record import ChannelRecord
from peepsy.conformance.master._wirechecks import WIRE_CHECKS, judge_wire


@dataclass(frozen=True, slots=True)
class WireRow:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str

    def outcome(self, verdict: Verdict, message: str = "") -> Outcome:
        return Outcome(
            check=self.check,
            requirement=self.requirement,
            level="wire",
            severity=self.severity,
            description=self.description,
            verdict=verdict,
            message=message,
            source="(the records of every case)",
        )


def wire_rows() -> list[WireRow]:
    """Every wire check, for --list and for the selection."""
    return [WireRow(c.check, c.requirement, c.severity, c.description) for c in WIRE_CHECKS]


def judge(records: Sequence[ChannelRecord], rows: Sequence[WireRow]) -> list[Outcome]:
    """The selected wire checks' verdicts over ``records`` (a check that saw nothing to
    judge is ``untestable``, never a pass: ``judge_wire`` says so itself)."""
    if not rows:
        return []
    chosen = {r.check: r for r in rows}
    return [
        chosen[result.check].outcome(result.verdict, result.message)
        for result in judge_wire(list(records))
        if result.check in chosen
    ]
