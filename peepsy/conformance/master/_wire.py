"""The wire checks (``m.frame.*``, ``m.msg.*``, ``m.init.*``, ``m.id.*``,
``m.cancel.only-when-allowed``, ``m.resp.matches-request``) as report outcomes: judged
once over the records of every case (or of an observed application), so that one defect
is one failure. The checks themselves are in ``_wirechecks.py``; this module turns
their results into :class:`Outcome`s with level ``wire``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from peepsy.conformance._transcript import Outcome, Verdict
from peepsy.conformance.master._record import ChannelRecord

try:
    from peepsy.conformance.master import _wirechecks as _checks  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - until the wire checks land
    from peepsy.conformance.master import _wire_fallback as _checks


@dataclass(frozen=True, slots=True)
class WireRow:
    check: str
    requirement: tuple[str, ...]
    severity: str
    description: str

    def outcome(self, verdict: Verdict, message: str = "", count: int = 0) -> Outcome:
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


def _row(item: Any) -> WireRow:
    requirement = item.requirement
    return WireRow(
        str(item.check),
        (requirement,) if isinstance(requirement, str) else tuple(requirement),
        str(item.severity),
        str(item.description),
    )


def wire_rows() -> list[WireRow]:
    """Every wire check, for --list and for the selection."""
    return [_row(c) for c in _checks.WIRE_CHECKS]


def judge(
    records: Sequence[ChannelRecord], rows: Sequence[WireRow], observe: bool
) -> list[Outcome]:
    """The selected wire checks' verdicts over ``records``. A check that saw nothing to
    judge is never a pass: ``untestable`` (in observe mode a check with no relevant
    traffic says so itself)."""
    if not rows:
        return []
    chosen = {r.check: r for r in rows}
    out: list[Outcome] = []
    for result in _checks.judge_wire(list(records)):
        row = chosen.get(result.check)
        if row is None:
            continue
        verdict = cast(Verdict, str(result.verdict))
        message = str(result.message or "")
        if not records:
            verdict, message = "untestable", "not testable: no child was started"
        out.append(row.outcome(verdict, message))
    return out
