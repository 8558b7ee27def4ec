"""Reports: the terminal, JSON (conformance/report.schema.json) and JUnit XML."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO
from xml.etree import ElementTree as ET

from peepsy.conformance._levels import level_states, levels_line
from peepsy.conformance._suite import SuiteResult
from peepsy.conformance._terminal import PLAIN, Painter
from peepsy.conformance._transcript import Outcome
from peepsy.protocol import PROTOCOL_VERSION

#: The version of the JSON report's shape (conformance/report.schema.json).
REPORT_VERSION = 3
VERDICTS = ("pass", "fail", "warn", "skip", "untestable", "not-run", "timeout", "error")
MARKS = {
    "pass": "PASS",
    "fail": "FAIL",
    "warn": "WARN",
    "skip": "SKIP",
    "untestable": "N/T ",
    "not-run": "NRUN",
    "timeout": "TIME",
    "error": "ERR ",
    "info": "INFO",
    "harness-error": "HERR",
}


class JUnitRun(Protocol):
    """What the JUnit report reads of a run: a worker's SuiteResult or a master's."""

    @property
    def outcomes(self) -> list[Outcome]: ...
    @property
    def startup_problem(self) -> str: ...
    @property
    def startup_stderr(self) -> list[str]: ...


@dataclass(slots=True)
class Expectations:
    """Checks listed in --expected-failures: each must still fail."""

    ids: frozenset[str]

    def judge(self, outcome: Outcome) -> str | None:
        """None (not listed, or skipped: it says nothing either way), 'expected' (listed
        and failing or warning: tolerated) or 'stale' (listed, but it passes)."""
        if outcome.check not in self.ids or outcome.verdict in (
            "skip",
            "untestable",
            "not-run",
            "info",
        ):
            return None
        failing = ("fail", "error", "timeout", "warn", "harness-error")
        return "expected" if outcome.verdict in failing else "stale"


def load_expectations(text: str) -> Expectations:
    """One check id per line; ``#`` starts a comment (the reason, say); blank lines are
    ignored."""
    ids = {line.split("#", 1)[0].strip() for line in text.splitlines()}
    return Expectations(frozenset(i for i in ids if i))


def read_expectations(path: Path | None) -> Expectations | None:
    """The ``--expected-failures`` file (no file: nothing expected), or None after saying
    on stderr why it cannot be read."""
    if path is None:
        return load_expectations("")
    try:
        return load_expectations(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"peepsy.conformance: --expected-failures: {exc}", file=sys.stderr)
        return None


def exit_code(result: SuiteResult, expectations: Expectations) -> int:
    if result.startup_problem:
        return 1  # the worker cannot be checked: that fails the run, once
    for outcome in result.outcomes:
        status = expectations.judge(outcome)
        if status == "stale" or (status is None and outcome.failed):
            return 1
    return 0


def format_progress(outcome: Outcome, index: int, total: int, painter: Painter = PLAIN) -> str:
    """One finished check as the progress line shows it (no newline)."""
    reqs = ",".join(outcome.requirement)
    took = f"{outcome.duration_ms:6.0f} ms" if outcome.duration_ms else " " * 9
    mark = painter.paint(MARKS[outcome.verdict], outcome.verdict)
    return f"[{index:3}/{total}] {mark}  {outcome.check:<40} {reqs:<18} {took}".rstrip()


def progress_line(outcome: Outcome, index: int, total: int, out: TextIO = sys.stdout) -> None:
    out.write(format_progress(outcome, index, total) + "\n")
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
    result: SuiteResult,
    expectations: Expectations,
    trace: bool,
    out: TextIO = sys.stdout,
    painter: Painter = PLAIN,
) -> None:
    width = min(shutil.get_terminal_size((120, 20)).columns, 160)
    problems = [o for o in result.outcomes if o.verdict in ("fail", "error", "timeout", "warn")]
    for outcome in problems:
        status = expectations.judge(outcome)
        tag = " (expected failure)" if status == "expected" else ""
        head = painter.paint(
            f"=== {MARKS[outcome.verdict].strip()} {outcome.check}", outcome.verdict
        )
        out.write(f"\n{head}{tag}: {outcome.description}\n")
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
        # The stderr of a worker that died in the check is why it died: shown by default.
        if (trace or outcome.worker_exit) and outcome.stderr.strip():
            out.write("    worker stderr (end):\n")
            for line in outcome.stderr.strip().splitlines()[-20 if trace else -10 :]:
                out.write(f"      {line}\n")
    untestable = [o for o in result.outcomes if o.verdict == "untestable"]
    if untestable:
        # Not failures, but not passes either: say what could not be judged, and why.
        out.write("\n")
        for outcome in untestable:
            out.write(f"=== N/T {outcome.check}: {outcome.message}\n")
    if result.startup_problem:
        out.write(f"\n=== NOT RUN: no check ran: {result.startup_problem}\n")
        if result.startup_stderr:
            out.write("    worker stderr (end):\n")
            for line in result.startup_stderr:
                out.write(f"      {line}\n")
        else:
            out.write("    worker stderr: (empty)\n")
    stale = [o.check for o in result.outcomes if expectations.judge(o) == "stale"]
    for check in stale:
        out.write(f"\n=== STALE {check}: listed as an expected failure, but it passes; remove it\n")
    counts: Counter[str] = Counter(o.verdict for o in result.outcomes)
    levels = levels_line(result)
    out.write("\n")
    out.write(f"worker: {' '.join(result.worker)}\n")
    out.write(f"mode:   {result.mode} (from {result.mode_source})\n")
    out.write(f"levels: {levels}\n")
    out.write("+------------+-------+\n| verdict    | count |\n+------------+-------+\n")
    for verdict in VERDICTS:
        cell = f"{verdict:<10}"
        if counts[verdict]:
            cell = painter.paint(cell, verdict)
        out.write(f"| {cell} | {counts[verdict]:5} |\n")
    out.write("+------------+-------+\n")
    judged = ("pass", "fail", "warn", "timeout", "error")
    if not result.startup_problem and not any(o.verdict in judged for o in result.outcomes):
        out.write("warning: no check ran: look at the levels line and --only/--skip\n")
    code = exit_code(result, expectations)
    verdict = painter.paint("FAILED", "fail") if code else painter.paint("PASSED", "pass")
    out.write(f"result: {verdict}\n")


def report_summary(result: SuiteResult, expectations: Expectations) -> dict[str, Any]:
    counts: Counter[str] = Counter(o.verdict for o in result.outcomes)
    judged = [(o.check, expectations.judge(o)) for o in result.outcomes]
    return {
        "total": len(result.outcomes),
        **{verdict: counts[verdict] for verdict in VERDICTS},
        "expectedFailures": [check for check, status in judged if status == "expected"],
        "stale": [check for check, status in judged if status == "stale"],
        "levels": level_states(result),
        "exitCode": 130 if result.interrupted else exit_code(result, expectations),
    }


#: A value in the JSON report longer than this (as JSON text) is cut to a string.
_REPORT_VALUE_LIMIT = 20_000


def _bounded(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) <= _REPORT_VALUE_LIMIT:
        return json.loads(text)
    return text[:_REPORT_VALUE_LIMIT] + f"... ({len(text)} characters)"


def to_json(result: SuiteResult, expectations: Expectations) -> dict[str, Any]:
    """The report of conformance/report.schema.json."""
    checks = [check_entry(o, expectations) for o in result.outcomes]
    return {
        "reportVersion": REPORT_VERSION,
        "protocol": PROTOCOL_VERSION,
        "worker": list(result.worker),
        "mode": result.mode,
        "modeSource": result.mode_source,
        "profile": result.profile,
        "profileNote": result.profile_note,
        "cancel": result.cancel,
        "cancelNote": result.cancel_note,
        "workerProtocol": result.worker_protocol,
        "passed": exit_code(result, expectations) == 0 and not result.interrupted,
        "interrupted": result.interrupted,
        "startup": (
            {"problem": result.startup_problem, "stderr": result.startup_stderr}
            if result.startup_problem
            else None
        ),
        "summary": report_summary(result, expectations),
        "checks": checks,
    }


def check_entry(o: Outcome, expectations: Expectations) -> dict[str, Any]:
    """One check of the JSON report (report.schema.json, Check): worker and master runs."""
    entry: dict[str, Any] = {
        "check": o.check,
        "requirement": list(o.requirement),
        "level": o.level,
        "severity": o.severity,
        "description": o.description,
        "verdict": o.verdict,
        "expectedFailure": expectations.judge(o),
        "message": o.message,
        "mismatches": [
            {"path": m.path, "expected": m.expected, "actual": m.actual} for m in o.mismatches
        ],
        "durationMs": round(o.duration_ms, 1),
        "source": o.source,
    }
    if o.verdict in ("fail", "warn", "timeout", "error", "harness-error"):
        entry["expected"] = _bounded(o.expected)
        entry["actual"] = _bounded(o.actual)
        entry["trace"] = o.trace[-200:]
        entry["stderr"] = o.stderr
    if o.worker_exit:
        entry["workerExit"] = o.worker_exit
    return entry


#: What XML 1.0 cannot hold (its Char production): C0 controls but tab, LF and CR (ESC
#: of ANSI colours, NUL, ...), lone surrogates, U+FFFE and U+FFFF. A worker may print any
#: bytes; the report must stay well-formed, so these are written as visible escapes.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold written as ``\\xNN`` or
    ``\\uNNNN`` (so ESC shows as ``\\x1b``; nothing is silently lost)."""
    return _NOT_XML.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )


def _stderr_tail(outcome: Outcome, lines: int = 40) -> str:
    return "\n".join(outcome.stderr.strip().splitlines()[-lines:])


def to_junit(result: JUnitRun, expectations: Expectations) -> bytes:
    """JUnit XML, one ``testcase`` per check (docs/conformance.md, "JUnit mapping"):

    - pass: an empty ``testcase``;
    - fail, timeout, and a stale expected failure: ``failure`` (``type`` the verdict);
    - error: ``error``;
    - warn: ``skipped type="warning"`` whose message starts ``WARN (SHOULD, REQ-1):``:
      visible in every CI's test view, and it does not fail the build, as a warning must
      not; its details are also in ``system-out``;
    - skip, untestable, not-run, and a tolerated expected failure: ``skipped`` with
      ``type`` saying which (``skip``, ``untestable``, ``not-run``, ``expected-failure``);
    - a worker that died at start-up adds one ``testcase`` ``suite.worker-starts`` with
      an ``error`` (the single cause), its stderr in ``system-err``.

    Every case that did not pass carries the end of its worker's stderr in
    ``system-err``. Text is made XML-safe (:func:`xml_text`). The ``testsuite`` counts
    are those of these elements."""
    suite = ET.Element("testsuite", name="peepsy-conformance")
    failures = errors = skipped = 0

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
        if text is not None:
            element.text = xml_text(text)
        return element

    cases = 0
    if result.startup_problem:
        cases += 1
        errors += 1
        case = sub(suite, "testcase", classname="peepsy.suite", name="suite.worker-starts")
        case.set("time", "0.000")
        sub(case, "error", message=result.startup_problem, type="worker-died")
        sub(case, "system-err", "\n".join(result.startup_stderr))
    for o in result.outcomes:
        cases += 1
        case = sub(suite, "testcase", classname=f"peepsy.{o.level}", name=o.check)
        case.set("time", f"{o.duration_ms / 1000:.3f}")
        status = expectations.judge(o)
        if o.verdict in ("skip", "untestable", "not-run"):
            skipped += 1
            sub(case, "skipped", message=o.message, type=o.verdict)
        elif status == "expected":
            skipped += 1
            sub(
                case,
                "skipped",
                message=f"expected failure ({o.verdict}): {o.message}",
                type="expected-failure",
            )
        elif status == "stale":
            failures += 1
            sub(
                case,
                "failure",
                message="expected to fail, but passes: remove it from the list",
                type="stale",
            )
        elif o.verdict in ("fail", "timeout"):
            failures += 1
            sub(
                case,
                "failure",
                "\n".join(
                    [f"{m.path}: expected {m.expected}, got {m.actual}" for m in o.mismatches]
                    + (["wire log:", *o.trace] if o.trace else [])
                ),
                message=o.message or o.verdict,
                type=o.verdict,
            )
        elif o.verdict in ("error", "harness-error"):
            errors += 1
            sub(case, "error", message=o.message, type=o.verdict)
        elif o.verdict == "info":
            # Library policy: reported, never scored, so it is neither a pass nor a failure.
            sub(case, "system-out", f"INFO (policy, not scored): {o.message}")
        elif o.verdict == "warn":
            skipped += 1
            text = f"WARN ({o.severity}, {', '.join(o.requirement)}): {o.message}"
            sub(case, "skipped", message=text, type="warning")
            sub(case, "system-out", text)
        if o.verdict != "pass" and o.stderr.strip():
            sub(case, "system-err", _stderr_tail(o))
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{sum(o.duration_ms for o in result.outcomes) / 1000:.3f}")
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def listing(outcomes: Sequence[tuple[str, str, str, str, str]], out: TextIO = sys.stdout) -> None:
    for check, level, severity, reqs, description in outcomes:
        out.write(f"{check:<40} {level:<8} {severity:<6} {reqs:<18} {description}\n")
