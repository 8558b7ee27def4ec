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


#: Wire checks about a capability: with nothing to judge, a harness that does not claim
#: it is told so (``skip``), not that its master was untestable.
_CAPABILITY = {"m.cancel.only-when-allowed": "cancel"}


def judge(
    records: Sequence[ChannelRecord],
    rows: Sequence[WireRow],
    capabilities: Sequence[str] | None = None,
) -> list[Outcome]:
    """The selected wire checks' verdicts over ``records`` (a check that saw nothing to
    judge is ``untestable``, never a pass: ``judge_wire`` says so itself).
    ``capabilities``: what the harness claimed (None in observe mode: unknown)."""
    if not rows:
        return []
    chosen = {r.check: r for r in rows}
    out = []
    for result in judge_wire(list(records)):
        if result.check not in chosen:
            continue
        needs = _CAPABILITY.get(result.check)
        if (
            result.verdict == "untestable"
            and needs is not None
            and capabilities is not None
            and needs not in capabilities
        ):
            why = (
                f"not claimed: the harness does not claim {needs!r}, and nothing was sent to judge"
            )
            out.append(chosen[result.check].outcome("skip", why))
        else:
            out.append(chosen[result.check].outcome(result.verdict, result.message))
    return out
