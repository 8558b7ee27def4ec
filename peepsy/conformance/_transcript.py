"""Transcripts: what the master sends and what it expects back, as data.

A transcript is a newline-delimited JSON file (``conformance/transcript.schema.json``).
Its first line is the header; every other line is one step::

    {"check": "resp.unknown-action", "requirement": ["RESP-4"], "level": "core",
     "severity": "MUST", "description": "..."}
    {"send": {"type": "REQUEST", "id": "c1", "action": "no-such-action"}}
    {"expect": {"type": "RESPONSE", "id": "c1", "status": 404,
                "error": {"$type": "string"}}, "within": 2000}

HEARTBEATs interleave freely: ``expect`` steps never see them (each is still validated
against the schema by the suite), and ``expect_heartbeats`` counts them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from peepsy.conformance._matchers import (
    Mismatch,
    pattern_names,
    show,
    template_refs,
)
from peepsy.conformance._schemas import record_problems

# "info" (library policy, not scored) and "harness-error" (the master's harness broke
# the harness protocol) are verdicts of master checks only.
Verdict = Literal[
    "pass",
    "fail",
    "warn",
    "skip",
    "untestable",
    "not-run",
    "timeout",
    "error",
    "info",
    "harness-error",
]
Transport = Literal["stdio", "node-ipc"]
#: The levels, each needing more of the worker than the one before it.
Level = Literal["core", "profile", "cancel"]
LEVELS: tuple[Level, ...] = ("core", "profile", "cancel")
DEFAULT_WITHIN = 2000
#: Until a worker has written its first line, every deadline also covers its start-up:
#: how long a process takes to start depends on how busy the machine is (dozens of
#: workers starting at once under -j, on a loaded CI host), not on the rule a step
#: checks. Timed checks warm up with an echo first, so they never run inside it.
STARTUP_ALLOWANCE_MS = 5000


class TranscriptError(ValueError):
    """A transcript file that is not valid."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """One check, as loaded from its ``.ndjson`` file: its id, the requirements it enforces,
    its level and severity, and the steps to play against the worker
    (conformance/README.md describes the format)."""

    check: str
    requirement: tuple[str, ...]
    level: Level
    severity: Literal["MUST", "SHOULD"]
    description: str
    steps: tuple[dict[str, Any], ...]
    source: str
    mode: Literal["any", "sequential", "concurrent"] = "any"
    #: Send INIT first; a mapping adds its members to the suite's INIT.
    init: bool | dict[str, Any] = True
    #: The channels the case can be sent on (Node's IPC channel carries JSON only).
    transports: tuple[Transport, ...] = ("stdio", "node-ipc")
    timeout: int = 15_000
    #: The file's line number of each step (blank lines are skipped, not counted out).
    step_lines: tuple[int, ...] = ()


class CaseLike(Protocol):
    """What an outcome takes from the case it judges."""

    @property
    def check(self) -> str: ...
    @property
    def requirement(self) -> tuple[str, ...]: ...
    @property
    def level(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def source(self) -> str: ...


@dataclass(slots=True)
class Outcome:
    """What one check came to."""

    check: str
    requirement: tuple[str, ...]
    level: str  # a Level for worker checks; a master level (wire, core, ...) for masters
    severity: str
    description: str
    verdict: Verdict
    message: str = ""
    expected: Any = None
    actual: Any = None
    mismatches: list[Mismatch] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    stderr: str = ""
    duration_ms: float = 0.0
    source: str = ""
    #: How the worker ended when it ended during the check (``exited with status 3``);
    #: "" when it was still running at the check's end.
    worker_exit: str = ""

    @classmethod
    def of(cls, case: CaseLike, verdict: Verdict = "pass", message: str = "") -> Outcome:
        """A check's outcome, named and described as its case (a worker transcript or
        a master case) names and describes it."""
        return cls(
            check=case.check,
            requirement=case.requirement,
            level=case.level,
            severity=case.severity,
            description=case.description,
            verdict=verdict,
            message=message,
            source=case.source,
        )

    @property
    def failed(self) -> bool:
        """Whether the verdict fails the run: ``fail``, ``error``, ``timeout`` or
        ``harness-error`` (a master's run that cannot be trusted)."""
        return self.verdict in ("fail", "error", "timeout", "harness-error")


def read_records(path: Path, kind: str) -> tuple[list[tuple[int, Any]], list[str]]:
    """The JSON lines of a case file (a worker transcript or a master case), each with
    its line number, and ``FILE:LINE`` problems for the lines that are not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read it: {exc}") from exc
    records: list[tuple[int, Any]] = []
    problems: list[str] = []
    # Lines end at \n only: U+2028 and friends are ordinary characters in NDJSON.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            # Strict JSON (RFC 8259), as on the wire: a case must not send NaN,
            # Infinity or a number no double holds.
            records.append(
                (number, json.loads(line, parse_constant=_not_json, parse_float=_finite))
            )
        except ValueError as exc:
            problems.append(f"{path}:{number}: not JSON: {exc}")
    if not records and not problems:
        raise TranscriptError(f"{path}: empty {kind} (the first line is the header)")
    return records, problems


def load_transcript(path: Path, validate: bool = True) -> Transcript:
    """Read and check one transcript file. Every problem is reported as ``FILE:LINE:
    what is wrong`` in a :class:`TranscriptError`: lines that are not JSON, lines that
    break conformance/transcript.schema.json (with ``validate``), unknown matchers and
    ``$ref``s to captures that no earlier step makes."""
    records, problems = read_records(path, "transcript")
    if validate and not problems:
        for index, (number, record) in enumerate(records):
            problems += [
                f"{path}:{number}: {p}" for p in record_problems(record, header=index == 0)
            ]
    if not problems:
        problems += [f"{path}:{n}: {p}" for n, p in _matcher_problems(records[1:])]
    if problems:
        raise TranscriptError("\n".join(problems[:10]))
    (_, head), steps = records[0], records[1:]
    if not isinstance(head, dict) or not {"check", "requirement"} <= set(head):
        raise TranscriptError(f"{path}:{records[0][0]}: the header needs check and requirement")
    return Transcript(
        check=head["check"],
        requirement=tuple(head["requirement"]),
        level=head.get("level", "core"),
        severity=head.get("severity", "MUST"),
        description=head.get("description", ""),
        steps=tuple(step for _, step in steps),
        source=str(path),
        mode=head.get("mode", "any"),
        init=head.get("init", True),
        transports=tuple(head.get("transports", ("stdio", "node-ipc"))),
        timeout=head.get("timeout", 15_000),
        step_lines=tuple(number for number, _ in steps),
    )


def _matcher_problems(steps: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """Unknown matchers, and ``$ref``s to names that no step up to this one captures."""
    captured: set[str] = set()
    out: list[tuple[int, str]] = []
    for number, step in steps:
        if not isinstance(step, dict):
            continue
        patterns: list[tuple[str, Any]] = []
        templates: list[tuple[str, Any]] = []
        if "expect_ready" in step:
            patterns.append(("$expect_ready", step["expect_ready"]))
        if "expect" in step:
            patterns.append(("$expect", step["expect"]))
            patterns += [(f"$allow[{i}]", a) for i, a in enumerate(step.get("allow", []))]
        if "expect_unordered" in step:
            patterns += [
                (f"$expect_unordered[{i}]", e) for i, e in enumerate(step["expect_unordered"])
            ]
        if isinstance(step.get("answer"), dict):
            patterns.append(("$answer.request", step["answer"].get("request")))
            templates.append(("$answer.response", step["answer"].get("response")))
        if isinstance(step.get("expect_exit"), dict) and "code" in step["expect_exit"]:
            patterns.append(("$expect_exit.code", step["expect_exit"]["code"]))
        if "send" in step:
            templates.append(("$send", step["send"]))
        for where, pattern in patterns:
            names, refs, problems = pattern_names(pattern, where)
            captured |= names
            out += [(number, p) for p in problems]
            out += [
                (number, f"{at}: $ref {name!r} names no capture made before it")
                for name, at in refs
                if name not in captured
            ]
        for where, template in templates:
            for name, at in template_refs(template, where):
                if name not in captured:
                    out.append((number, f"{at}: $ref {name!r} names no capture made before it"))
    return out


class NotTestable(Exception):
    """The case ran but the worker gave it nothing to judge: never a pass."""


class StepFailed(Exception):
    def __init__(
        self,
        message: str,
        expected: Any = None,
        actual: Any = None,
        mismatches: list[Mismatch] | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.mismatches = mismatches or []


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is beyond what a JSON peer holds")
    return value


def describe(value: Any) -> str:
    return show(value)
