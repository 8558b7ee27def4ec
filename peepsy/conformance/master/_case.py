"""Master cases: transcripts whose header says ``"role": "master"`` (conformance/MASTER.md,
Cases), loaded and checked before anything runs: a step the format does not know, a
``$ref`` to a capture no earlier step makes, an ``outcome`` or ``cancel`` naming an
``as`` no earlier step gave, or a child used before its ``spawn`` is a load error
(:class:`TranscriptError`, exit status 2)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peepsy.conformance._matchers import pattern_names, template_refs
from peepsy.conformance._schemas import _jsonschema, _transcript_schema, json_path
from peepsy.conformance._suite_setup import case_files, unique_checks
from peepsy.conformance._transcript import TranscriptError, read_records

#: The levels of master checks, in the order the report lists them.
MASTER_LEVELS = ("wire", "core", "profile", "supervision", "groups", "retry", "cancel", "legacy")
#: The capability a level needs the harness to claim (wire and core need none).
LEVEL_NEEDS = {level: level for level in MASTER_LEVELS[2:]}


@dataclass(frozen=True, slots=True)
class MasterCase:
    check: str
    requirement: tuple[str, ...]
    level: str
    severity: str
    description: str
    steps: tuple[dict[str, Any], ...]
    source: str
    needs: tuple[str, ...] = ()
    master: dict[str, Any] | None = None
    policy: bool = False
    timeout: int = 15_000
    step_lines: tuple[int, ...] = ()

    @property
    def claims_needed(self) -> tuple[str, ...]:
        """Every capability the case needs: its ``needs`` and its level's."""
        extra = LEVEL_NEEDS.get(self.level)
        return tuple(dict.fromkeys((*self.needs, *([extra] if extra else []))))


def step_op(step: dict[str, Any]) -> str:
    """The key that names a step's operation."""
    return _ops_of(step)[0]


def _ops_of(step: dict[str, Any]) -> list[str]:
    # A spawn step names its child's group in ``group`` (MASTER.md): it is a spawn.
    return ["spawn"] if "spawn" in step else [op for op in _ops() if op in step]


def _ops() -> list[str]:
    return [b["required"][0] for b in _transcript_schema()["$defs"]["MasterStep"]["oneOf"]]


def _problems(record: Any, header: bool) -> list[str]:
    validator_cls, _ = _jsonschema()
    defs = _transcript_schema()["$defs"]
    if header:
        sub, where = defs["MasterHeader"], "header"
    else:
        if not isinstance(record, dict):
            return [f"a step is a JSON object, not {json.dumps(record)[:40]}"]
        ops = _ops_of(record)
        if len(ops) != 1:
            have = ", ".join(ops) or ", ".join(sorted(record)) or "no member"
            return [f"a step has one of {', '.join(_ops())}; this one has {have}"]
        branches = defs["MasterStep"]["oneOf"]
        sub, where = branches[_ops().index(ops[0])], ops[0]
    validator = validator_cls({**sub, "$defs": defs})
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    return [f"{where} {json_path(e.absolute_path)}: {e.message}" for e in errors][:3]


def load_case(path: Path) -> MasterCase:
    records, problems = read_records(path, "case")
    if not problems:
        for index, (number, record) in enumerate(records):
            problems += [f"{path}:{number}: {p}" for p in _problems(record, index == 0)]
    if not problems:
        problems += [f"{path}:{n}: {p}" for n, p in _reference_problems(records[1:])]
    if problems:
        raise TranscriptError("\n".join(problems[:10]))
    (_, head), steps = records[0], records[1:]
    return MasterCase(
        check=head["check"],
        requirement=tuple(head["requirement"]),
        level=head.get("level", "core"),
        severity=head.get("severity", "MUST"),
        description=head["description"],
        steps=tuple(step for _, step in steps),
        source=str(path),
        needs=tuple(head.get("needs", ())),
        master=head.get("master"),
        policy=bool(head.get("policy", False)),
        timeout=head.get("timeout", 15_000),
        step_lines=tuple(number for number, _ in steps),
    )


def _reference_problems(steps: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """Names used before they are made: captures, ``as`` names, children."""
    captured: set[str] = set()
    names: set[str] = set()
    children: set[str] = set()
    out: list[tuple[int, str]] = []
    for number, step in steps:
        op = step_op(step)
        child = step.get("child")
        if child is not None and child not in children:
            out.append((number, f"child {child!r} is used before a spawn step starts it"))
        if op == "spawn":
            children.add(step["spawn"])
        if op == "do":
            request = step["do"].get("request")
            if step["do"]["cmd"] == "cancel" and isinstance(request, str) and request not in names:
                out.append((number, f"cancel names {request!r}, which no earlier step's as gave"))
            if "as" in step:
                if step["as"] in names:
                    out.append((number, f"as {step['as']!r} is given twice"))
                names.add(step["as"])
        if op in ("outcome", "no_outcome") and step[op] not in names:
            out.append((number, f"{op} names {step[op]!r}, which no earlier step's as gave"))
        patterns = []
        if op == "expect":
            patterns = [("$expect", step["expect"])]
            patterns += [(f"$allow[{i}]", a) for i, a in enumerate(step.get("allow", []))]
            if "unlike" in step:
                patterns.append(("$unlike", step["unlike"]))
        elif op == "expect_silence":
            patterns = [(f"$allow[{i}]", a) for i, a in enumerate(step.get("allow", []))]
        elif op == "outcome" and "is" in step:
            patterns = [("$is", step["is"])]
        for where, pattern in patterns:
            made, refs, bad = pattern_names(pattern, where)
            out += [(number, p) for p in bad]
            captured |= made
            out += [
                (number, f"{at}: $ref {name!r} names no capture made before it")
                for name, at in refs
                if name not in captured
            ]
        templates = [("$send", step["send"])] if op == "send" else []
        if op == "stderr" and isinstance(step["stderr"], dict):
            templates.append(("$stderr", step["stderr"]))
        if op == "do":
            templates.append(("$do", step["do"]))
        for where, template in templates:
            for name, at in template_refs(template, where):
                if name not in captured:
                    out.append((number, f"{at}: $ref {name!r} names no capture made before it"))
    return out


def load_cases(dirs: Iterable[Path]) -> list[MasterCase]:
    """Every master case (``*.ndjson``) under each folder, or each file given itself;
    check ids unique across all of them."""
    return unique_checks(load_case(path) for path in case_files(dirs))
