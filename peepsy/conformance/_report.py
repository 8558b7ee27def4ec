"""Reports: the terminal, JSON (conformance/report.schema.json) and JUnit XML."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from xml.etree import ElementTree as ET

from peepsy.conformance._suite import SuiteResult
from peepsy.conformance._transcript import Outcome

MARKS = {
    "pass": "PASS",
    "fail": "FAIL",
    "warn": "WARN",
    "skip": "SKIP",
    "timeout": "TIME",
    "error": "ERR ",
}


@dataclass(slots=True)
class Expectations:
    """Checks listed in --expected-failures: each must still fail."""

    ids: frozenset[str]

    def judge(self, outcome: Outcome) -> str | None:
        """None, 'expected' (listed and failing: tolerated) or 'stale' (listed, passing)."""
        if outcome.check not in self.ids:
            return None
        return "expected" if outcome.verdict in ("fail", "error", "timeout", "warn") else "stale"


def load_expectations(text: str) -> Expectations:
    ids = {line.split("#", 1)[0].strip() for line in text.splitlines()}
    return Expectations(frozenset(i for i in ids if i))


def exit_code(result: SuiteResult, expectations: Expectations) -> int:
    for outcome in result.outcomes:
        status = expectations.judge(outcome)
        if status == "stale" or (status is None and outcome.failed):
            return 1
    return 0


def progress_line(outcome: Outcome, index: int, total: int, out: TextIO = sys.stdout) -> None:
    reqs = ",".join(outcome.requirement)
    took = f"{outcome.duration_ms:6.0f} ms" if outcome.duration_ms else " " * 9
    out.write(
        f"[{index:3}/{total}] {MARKS[outcome.verdict]}  {outcome.check:<40} {reqs:<18} {took}\n"
    )
    out.flush()


def _pretty(value: Any) -> list[str]:
    if value is None:
        return ["(nothing)"]
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False).splitlines()


def side_by_side(expected: Any, actual: Any, width: int) -> list[str]:
    left, right = _pretty(expected), _pretty(actual)
    col = max(20, (width - 3) // 2)
    rows = [f"{'expected':<{col}} | actual", f"{'-' * col}-+-{'-' * col}"]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        rows.append(f"{a[:col]:<{col}} | {b[:col]}")
    return rows


def summary(
    result: SuiteResult, expectations: Expectations, trace: bool, out: TextIO = sys.stdout
) -> None:
    width = min(shutil.get_terminal_size((120, 20)).columns, 160)
    problems = [o for o in result.outcomes if o.verdict in ("fail", "error", "timeout", "warn")]
    for outcome in problems:
        status = expectations.judge(outcome)
        tag = " (expected failure)" if status == "expected" else ""
        out.write(
            f"\n=== {MARKS[outcome.verdict].strip()} {outcome.check}{tag}: {outcome.description}\n"
        )
        out.write(
            f"    requirement {', '.join(outcome.requirement)} ({outcome.severity});"
            f" {outcome.source}\n"
        )
        if outcome.message:
            out.write(f"    {outcome.message}\n")
        for mismatch in outcome.mismatches:
            out.write(
                f"    at {mismatch.path}: expected {mismatch.expected}, got {mismatch.actual}\n"
            )
        if outcome.expected is not None or outcome.actual is not None:
            for row in side_by_side(outcome.expected, outcome.actual, width - 4):
                out.write(f"    {row}\n")
        if trace and outcome.trace:
            out.write("    wire log:\n")
            for line in outcome.trace:
                out.write(f"      {line}\n")
            if outcome.stderr.strip():
                out.write("    worker stderr (end):\n")
                for line in outcome.stderr.strip().splitlines()[-20:]:
                    out.write(f"      {line}\n")
    stale = [o.check for o in result.outcomes if expectations.judge(o) == "stale"]
    for check in stale:
        out.write(f"\n=== STALE {check}: listed as an expected failure, but it passes; remove it\n")
    counts = Counter(o.verdict for o in result.outcomes)
    levels = _levels(result)
    out.write("\n")
    out.write(f"worker: {' '.join(result.worker)}\n")
    out.write(f"mode:   {result.mode} (from {result.mode_source})\n")
    out.write(f"levels: {levels}\n")
    out.write("+---------+-------+\n| verdict | count |\n+---------+-------+\n")
    for verdict in ("pass", "fail", "warn", "skip", "timeout", "error"):
        out.write(f"| {verdict:<7} | {counts.get(verdict, 0):5} |\n")
    out.write("+---------+-------+\n")
    code = exit_code(result, expectations)
    out.write("result: " + ("FAILED" if code else "PASSED") + "\n")


def _levels(result: SuiteResult) -> str:
    def reached(level: str) -> str:
        mine = [o for o in result.outcomes if o.level == level and o.verdict != "skip"]
        if not mine:
            return f"{level}: not run"
        bad = [o for o in mine if o.failed]
        return f"{level}: {'reached' if not bad else f'not reached ({len(bad)} failing)'}"

    note = "" if result.profile else f" ({result.profile_note})"
    return f"{reached('core')}; {reached('profile')}{note}"


def to_json(result: SuiteResult, expectations: Expectations) -> dict[str, Any]:
    return {
        "worker": list(result.worker),
        "mode": result.mode,
        "modeSource": result.mode_source,
        "profile": result.profile,
        "passed": exit_code(result, expectations) == 0,
        "checks": [
            {
                "check": o.check,
                "requirement": list(o.requirement),
                "level": o.level,
                "severity": o.severity,
                "description": o.description,
                "verdict": o.verdict,
                "expectedFailure": expectations.judge(o),
                "message": o.message,
                "mismatches": [
                    {"path": m.path, "expected": m.expected, "actual": m.actual}
                    for m in o.mismatches
                ],
                "durationMs": round(o.duration_ms, 1),
                "source": o.source,
            }
            for o in result.outcomes
        ],
    }


def to_junit(result: SuiteResult, expectations: Expectations) -> bytes:
    suite = ET.Element("testsuite", name="peepsy-conformance", tests=str(len(result.outcomes)))
    counts = Counter(o.verdict for o in result.outcomes)
    suite.set("failures", str(counts["fail"] + counts["timeout"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skip"]))
    for o in result.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"peepsy.{o.level}",
            name=o.check,
            time=f"{o.duration_ms / 1000:.3f}",
        )
        status = expectations.judge(o)
        if o.verdict == "skip":
            ET.SubElement(case, "skipped", message=o.message)
        elif status == "stale":
            ET.SubElement(
                case, "failure", message="expected to fail, but passes: remove it from the list"
            )
        elif o.verdict in ("fail", "timeout") and status != "expected":
            failure = ET.SubElement(case, "failure", message=o.message or o.verdict)
            failure.text = "\n".join(
                f"{m.path}: expected {m.expected}, got {m.actual}" for m in o.mismatches
            )
        elif o.verdict == "error" and status != "expected":
            ET.SubElement(case, "error", message=o.message)
        elif o.verdict == "warn":
            ET.SubElement(case, "system-out").text = f"WARN ({o.severity}): {o.message}"
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def listing(outcomes: Sequence[tuple[str, str, str, str, str]], out: TextIO = sys.stdout) -> None:
    for check, level, severity, reqs, description in outcomes:
        out.write(f"{check:<40} {level:<8} {severity:<6} {reqs:<18} {description}\n")
