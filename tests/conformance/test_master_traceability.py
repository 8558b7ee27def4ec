"""Every master MUST and SHOULD of docs/protocol.md is judged by a master check, or says why not.

Four sources have to agree, and these tests hold them together:

- docs/protocol.md: its requirement index gives each id its level, and its section on
  masters lists the requirements that bind a master ("Which requirements bind a master");
- conformance/MASTER.md, "Checks": each master check's level, severity and requirements;
- conformance/MASTER.md, "Requirements and their checks": each master requirement with
  the checks that cite it, or the reason none can;
- the checks themselves: the case files in conformance/master/ (their headers) and the
  wire checks, which have no case file (as the runner lists them,
  peepsy/conformance/master/_wire.py).

Until the case files and the wire checks exist, the check table stands for them, and the
test that compares it with them skips.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._paths import ROOT

PROTOCOL = ROOT / "docs" / "protocol.md"
MASTER = ROOT / "conformance" / "MASTER.md"
CASES = ROOT / "conformance" / "master"
WIRE_MODULE = "peepsy.conformance.master._wire"

INDEX_HEADING = re.compile(r"^## \d+\. Requirement index$", re.M)
INDEX_ROW = re.compile(r"^\| ([A-Z]+-\d+) \| (MUST|SHOULD|MAY|—) \|", re.M)
REQUIREMENT = re.compile(r"\b[A-Z]+-\d+\b")
CHECK_ROW = re.compile(
    r"^\| `(m\.[a-z0-9.-]+)` \| ([a-z]+) \| (MUST|SHOULD|policy) \| ([^|]*) \| [^|]* \|$", re.M
)
TRACE_ROW = re.compile(r"^\| ([A-Z]+-\d+) \| (MUST|SHOULD|MAY|—) \| ([^|]*) \| ([^|]*) \|$", re.M)
LEVELS = ("wire", "core", "profile", "supervision", "groups", "retry", "cancel", "legacy")
#: Checks that judge a SHOULD sentence inside a MUST requirement (docs/protocol.md's
#: conventions): their severity is SHOULD though the requirement they cite first is MUST.
SHOULD_IN_MUST = {
    "m.id.not-reused": "ID-2",  # ids SHOULD NOT be reused at all
    "m.cancel.on-timeout": "CANCEL-1",  # a side that gives a request up SHOULD cancel it
    "m.shut.escalation": "SHUT-3",  # close stdin, SIGTERM, SIGKILL, in that order
    "m.shut.stop-stops-children": "SHUT-3",  # stop the children at exit
}


@dataclass(frozen=True, slots=True)
class Check:
    level: str
    severity: str  # MUST, SHOULD or policy
    requirement: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Row:
    level: str
    checks: frozenset[str]
    reason: str


def _section(text: str, heading: str | re.Pattern[str]) -> str:
    """From a heading (its text, or a pattern) to the next heading as deep or less deep."""
    found = re.compile(re.escape(heading) if isinstance(heading, str) else heading.pattern, re.M)
    match = found.search(text)
    assert match is not None, f"no heading {found.pattern}"
    depth = len(text[match.start() :].split(" ", 1)[0])
    after = re.compile(rf"^#{{1,{depth}}} ", re.M).search(text, match.end())
    return text[match.start() : after.start() if after else None]


def requirement_index(protocol: str) -> dict[str, str]:
    """id -> level, from the protocol's requirement index."""
    return dict(INDEX_ROW.findall(_section(protocol, INDEX_HEADING)))


def master_requirements(protocol: str) -> set[str]:
    """The ids that bind a master: those of the master section and those its table lists."""
    masters = _section(protocol, "## 16. Masters")
    listed = _section(masters, "### Which requirements bind a master")
    rows = [line for line in listed.splitlines() if line.startswith("| ")]
    return set(REQUIREMENT.findall("\n".join(rows)))


def check_table(master: str) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    for check, level, severity, cited in CHECK_ROW.findall(_section(master, "## Checks")):
        assert check not in checks, f"{check} has two rows"
        checks[check] = Check(level, severity, tuple(REQUIREMENT.findall(cited)))
    return checks


def trace_table(master: str) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    text = _section(master, "## Requirements and their checks")
    for rid, level, checks, reason in TRACE_ROW.findall(text):
        assert rid not in rows, f"{rid} has two rows"
        rows[rid] = Row(level, frozenset(re.findall(r"`(m\.[a-z0-9.-]+)`", checks)), reason.strip())
    return rows


def expected_severity(check: str, cited: tuple[str, ...], index: dict[str, str]) -> str:
    if check in SHOULD_IN_MUST:
        return "SHOULD"
    return next((index[r] for r in cited if index.get(r) in ("MUST", "SHOULD")), "none")


def check_problems(checks: dict[str, Check], index: dict[str, str], binding: set[str]) -> list[str]:
    out: list[str] = []
    for check, c in sorted(checks.items()):
        if c.level not in LEVELS:
            out.append(f"{check}: level {c.level!r} is not one of {LEVELS}")
        if c.severity == "policy":
            if c.requirement:
                out.append(f"{check} is policy: it cites no requirement")
            continue
        unknown = [r for r in c.requirement if r not in index]
        if not c.requirement or unknown:
            out.append(f"{check} cites {unknown or 'nothing'}, which the index does not have")
            continue
        foreign = [r for r in c.requirement if r not in binding]
        if foreign:
            out.append(f"{check} cites {foreign}, which protocol.md does not list for masters")
        if check in SHOULD_IN_MUST and c.requirement[0] != SHOULD_IN_MUST[check]:
            out.append(f"{check} judges a SHOULD of {SHOULD_IN_MUST[check]}: it cites it first")
        want = expected_severity(check, c.requirement, index)
        if c.severity != want:
            out.append(f"{check} is {c.severity}, but its requirements make it {want}")
    return out


def trace_problems(
    rows: dict[str, Row], checks: dict[str, Check], index: dict[str, str], binding: set[str]
) -> list[str]:
    out: list[str] = []
    in_index_order = sorted(
        binding,
        key=lambda rid: (rid not in index, list(index).index(rid) if rid in index else 0, rid),
    )
    for rid in in_index_order:
        level = index.get(rid)
        if level is None:
            out.append(f"{rid} is listed for masters but the index does not have it")
            continue
        row = rows.get(rid)
        if level not in ("MUST", "SHOULD"):
            if row is not None:
                out.append(f"{rid} is {level}: it needs no row")
            continue
        if row is None:
            out.append(f"{rid} ({level}) has no row")
            continue
        if row.level != level:
            out.append(f"{rid}: the row says {row.level}, the index {level}")
        citing = frozenset(c for c, d in checks.items() if rid in d.requirement)
        if row.checks != citing:
            out.append(
                f"{rid}: the row lists {sorted(row.checks)}, the checks citing it are"
                f" {sorted(citing)}"
            )
        if not citing and not row.reason:
            out.append(f"{rid} ({level}) has neither a check nor a reason")
        if citing and row.reason:
            out.append(f"{rid} has checks and a reason: the reason is stale")
    out += [
        f"{rid}: a row for a requirement that binds no master" for rid in rows if rid not in binding
    ]
    return out


def problems(protocol: str, master: str) -> list[str]:
    """Everything on which the protocol, the check table and the requirement table disagree."""
    index = requirement_index(protocol)
    binding = master_requirements(protocol)
    checks = check_table(master)
    return check_problems(checks, index, binding) + trace_problems(
        trace_table(master), checks, index, binding
    )


# --- the checks as the suite defines them -------------------------------------------------


def case_headers(folder: Path) -> dict[str, Check]:
    """check id -> what its case file's header says (the first line of each .ndjson)."""
    found: dict[str, Check] = {}
    for path in sorted(folder.rglob("*.ndjson")):
        with path.open(encoding="utf-8") as lines:
            header: dict[str, Any] = json.loads(next(line for line in lines if line.strip()))
        check = str(header["check"])
        assert check not in found, f"{check} is defined by two case files"
        severity = "policy" if header.get("policy") else str(header.get("severity", "MUST"))
        cited = () if severity == "policy" else tuple(header.get("requirement", ()))
        found[check] = Check(str(header.get("level", "core")), severity, cited)
    return found


def wire_checks(module_name: str = WIRE_MODULE) -> dict[str, Check] | None:
    """check id -> each wire check, as the runner lists them (``wire_rows()``). None
    before the runner has them."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    return {
        row.check: Check("wire", str(row.severity), tuple(row.requirement))
        for row in module.wire_rows()
    }


def definition_problems(
    table: dict[str, Check], cases: dict[str, Check], wire: dict[str, Check] | None
) -> list[str]:
    """The table against the checks that exist: a row no case file (or wire check)
    defines, a definition with no row, and a header that says otherwise than its row.
    ``wire`` None: the wire checks are not there to compare yet."""
    out: list[str] = []
    defined = dict(cases)
    if wire is not None:
        defined |= wire
    for check, row in sorted(table.items()):
        if row.level == "wire" and wire is None:
            continue
        if row.level != "wire" and not cases:
            continue
        found = defined.get(check)
        source = "wire check" if row.level == "wire" else "case file"
        if found is None:
            out.append(f"{check} is in the table, but no {source} defines it")
        elif found != row:
            out.append(f"{check}: the table says {row}, its {source} {found}")
    out += [
        f"{check} is defined but has no row in the table" for check in defined if check not in table
    ]
    return out


# --- the tests ---------------------------------------------------------------------------


def test_every_master_requirement_is_checked_or_has_a_reason() -> None:
    assert problems(PROTOCOL.read_text("utf-8"), MASTER.read_text("utf-8")) == []


def test_the_tables_are_whole() -> None:
    """The parsers found what the issue fixed: the checks of every level, MASTER-1..6."""
    master = MASTER.read_text("utf-8")
    checks = check_table(master)
    assert len(checks) >= 60
    assert {c.level for c in checks.values()} == set(LEVELS)
    binding = master_requirements(PROTOCOL.read_text("utf-8"))
    assert {f"MASTER-{n}" for n in range(1, 7)} | {"INIT-1", "HB-2", "SCHED-4"} <= binding
    assert "STREAM-1" not in binding  # a child's
    assert set(trace_table(master)) <= binding
    # The page names each check that judges a SHOULD inside a MUST, with that MUST.
    said = _section(master, "## Checks").split("| check | level |")[1]
    for check, rid in SHOULD_IN_MUST.items():
        assert f"`{check}`" in said.split("\n\n", 1)[1], check
        assert rid in said, rid


def test_the_table_is_what_the_case_files_and_wire_checks_define() -> None:
    cases = case_headers(CASES) if CASES.is_dir() else {}
    wire = wire_checks()
    if not cases and wire is None:
        pytest.skip("no case files in conformance/master/ and no wire checks yet")
    assert definition_problems(check_table(MASTER.read_text("utf-8")), cases, wire) == []


# --- the comparison can fail ---------------------------------------------------------------

PROTOCOL_FAKE = """
## 16. Masters

- **MASTER-1** A master MUST.

### Which requirements bind a master

| a master as | requirements |
|---|---|
| requester | A-1, A-2, A-3, MASTER-1 |

## 17. Versioning

| x | B-1 |

## 19. Requirement index

| id | level | summary |
|---|---|---|
| A-1 | MUST | a |
| A-2 | SHOULD | b |
| A-3 | MAY | c |
| B-1 | MUST | a child's |
| MASTER-1 | MUST | m |
"""


def master_fake(checks: str, rows: str) -> str:
    return (
        "# M\n\n## Checks\n\n| check | level | severity | requirements | what |\n"
        "|---|---|---|---|---|\n"
        f"{checks}\n## Requirements and their checks\n\n| requirement | level | checks | reason |\n"
        f"|---|---|---|---|\n{rows}\n## After\n\n| A-2 | SHOULD |  | outside the section |\n"
    )


GOOD_CHECKS = (
    "| `m.one` | core | MUST | A-1, MASTER-1 | one |\n"
    "| `m.two` | wire | SHOULD | A-2 | two |\n"
    "| `m.pol` | groups | policy | — | spread |\n"
)
GOOD_ROWS = (
    "| A-1 | MUST | `m.one` |  |\n"
    "| A-2 | SHOULD | `m.two` |  |\n"
    "| MASTER-1 | MUST |  | not observable |\n"
)


def test_the_comparison_finds_each_kind_of_gap() -> None:
    good = master_fake(GOOD_CHECKS, GOOD_ROWS)
    # MASTER-1 has a reason, though m.one cites it: a stale reason.
    assert problems(PROTOCOL_FAKE, good) == [
        "MASTER-1: the row lists [], the checks citing it are ['m.one']",
        "MASTER-1 has checks and a reason: the reason is stale",
    ]
    good = good.replace(
        "| MASTER-1 | MUST |  | not observable |", "| MASTER-1 | MUST | `m.one` |  |"
    )
    assert problems(PROTOCOL_FAKE, good) == []
    cases = {
        "no row": good.replace("| A-2 | SHOULD | `m.two` |  |\n", ""),
        "no reason": good.replace("| `m.two` | wire | SHOULD | A-2 | two |\n", "").replace(
            "| A-2 | SHOULD | `m.two` |  |", "| A-2 | SHOULD |  |  |"
        ),
        "wrong level": good.replace("| A-1 | MUST | `m.one`", "| A-1 | SHOULD | `m.one`"),
        "a MAY row": good.replace("| A-1 | MUST", "| A-3 | MAY |  | x |\n| A-1 | MUST"),
        "a child's row": good.replace("| A-1 | MUST", "| B-1 | MUST |  | x |\n| A-1 | MUST"),
        "unknown id": good.replace("| A-1, MASTER-1 |", "| Z-9, MASTER-1 |"),
        "a child's id": good.replace("| A-1, MASTER-1 |", "| A-1, MASTER-1, B-1 |"),
        "severity": good.replace("| `m.two` | wire | SHOULD |", "| `m.two` | wire | MUST |"),
        "bad level": good.replace("| `m.one` | core |", "| `m.one` | nowhere |"),
        "policy cites": good.replace("| policy | — |", "| policy | A-1 |"),
        "cites nothing": good.replace("| A-1, MASTER-1 |", "| — |"),
    }
    found = {name: problems(PROTOCOL_FAKE, text) for name, text in cases.items()}
    assert found == {
        "no row": ["A-2 (SHOULD) has no row"],
        "no reason": ["A-2 (SHOULD) has neither a check nor a reason"],
        "wrong level": ["A-1: the row says SHOULD, the index MUST"],
        "a MAY row": ["A-3 is MAY: it needs no row"],
        "a child's row": ["B-1: a row for a requirement that binds no master"],
        "unknown id": [
            "m.one cites ['Z-9'], which the index does not have",
            "A-1: the row lists ['m.one'], the checks citing it are []",
            "A-1 (MUST) has neither a check nor a reason",
        ],
        "a child's id": ["m.one cites ['B-1'], which protocol.md does not list for masters"],
        "severity": ["m.two is MUST, but its requirements make it SHOULD"],
        "bad level": [f"m.one: level 'nowhere' is not one of {LEVELS}"],
        "policy cites": [
            "m.pol is policy: it cites no requirement",
            "A-1: the row lists ['m.one'], the checks citing it are ['m.one', 'm.pol']",
        ],
        "cites nothing": [
            "m.one cites nothing, which the index does not have",
            "A-1: the row lists ['m.one'], the checks citing it are []",
            "A-1 (MUST) has neither a check nor a reason",
            "MASTER-1: the row lists ['m.one'], the checks citing it are []",
            "MASTER-1 (MUST) has neither a check nor a reason",
        ],
    }


def test_a_should_inside_a_must_is_judged_by_its_own_should_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(f"{__name__}.SHOULD_IN_MUST", {"m.one": "A-1"})
    rows = GOOD_ROWS.replace(
        "| MASTER-1 | MUST |  | not observable |", "| MASTER-1 | MUST | `m.one` |  |"
    )
    good = master_fake(GOOD_CHECKS.replace("| core | MUST |", "| core | SHOULD |"), rows)
    assert problems(PROTOCOL_FAKE, good) == []
    as_must = good.replace("| core | SHOULD |", "| core | MUST |")
    assert problems(PROTOCOL_FAKE, as_must) == [
        "m.one is MUST, but its requirements make it SHOULD"
    ]
    second = good.replace("| A-1, MASTER-1 |", "| MASTER-1, A-1 |")
    assert problems(PROTOCOL_FAKE, second) == ["m.one judges a SHOULD of A-1: it cites it first"]


def test_a_requirement_listed_for_masters_must_be_indexed() -> None:
    protocol = PROTOCOL_FAKE.replace(
        "| A-1, A-2, A-3, MASTER-1 |", "| A-1, A-2, A-3, A-4, MASTER-1 |"
    )
    rows = GOOD_ROWS.replace(
        "| MASTER-1 | MUST |  | not observable |", "| MASTER-1 | MUST | `m.one` |  |"
    )
    assert problems(protocol, master_fake(GOOD_CHECKS, rows)) == [
        "A-4 is listed for masters but the index does not have it"
    ]


def _case(folder: Path, name: str, header: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n" + json.dumps(header) + '\n{"stop": true}\n', encoding="utf-8")


def test_the_definitions_are_read_from_case_files(tmp_path: Path) -> None:
    _case(tmp_path / "core", "one.ndjson", {"check": "m.one", "requirement": ["A-1"]})
    _case(
        tmp_path / "groups",
        "pol.ndjson",
        {"check": "m.pol", "requirement": ["A-1"], "level": "groups", "policy": True},
    )
    _case(
        tmp_path / "profile",
        "two.ndjson",
        {"check": "m.two", "requirement": ["A-2"], "level": "profile", "severity": "SHOULD"},
    )
    assert case_headers(tmp_path) == {
        "m.one": Check("core", "MUST", ("A-1",)),
        "m.pol": Check("groups", "policy", ()),
        "m.two": Check("profile", "SHOULD", ("A-2",)),
    }


class _Row:
    def __init__(self, check: str, requirement: tuple[str, ...], severity: str) -> None:
        self.check, self.requirement, self.severity = check, requirement, severity


def test_the_wire_checks_are_what_the_runner_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    class Module:
        @staticmethod
        def wire_rows() -> list[_Row]:
            return [_Row("m.two", ("A-2",), "SHOULD")]

    monkeypatch.setattr(importlib, "import_module", lambda name: Module)
    assert wire_checks("anything") == {"m.two": Check("wire", "SHOULD", ("A-2",))}
    monkeypatch.undo()
    assert wire_checks("peepsy.conformance.master._no_such_module") is None


def test_the_definition_comparison_finds_each_kind_of_gap() -> None:
    table = check_table(master_fake(GOOD_CHECKS, GOOD_ROWS))
    cases = {
        "m.one": Check("core", "MUST", ("A-1", "MASTER-1")),
        "m.pol": Check("groups", "policy", ()),
    }
    wire = {"m.two": Check("wire", "SHOULD", ("A-2",))}
    assert definition_problems(table, cases, wire) == []
    assert definition_problems(table, cases, None) == []  # the wire checks are not there yet
    assert definition_problems(table, {}, wire) == []  # nor the case files
    assert definition_problems(table, {"m.one": cases["m.one"]}, wire) == [
        "m.pol is in the table, but no case file defines it"
    ]
    assert definition_problems(table, cases, {}) == [
        "m.two is in the table, but no wire check defines it"
    ]
    changed = cases | {"m.one": Check("core", "SHOULD", ("A-1", "MASTER-1"))}
    assert definition_problems(table, changed, wire) == [
        f"m.one: the table says {table['m.one']}, its case file {changed['m.one']}"
    ]
    extra = cases | {"m.three": Check("core", "MUST", ("A-1",))}
    assert definition_problems(table, extra, wire) == [
        "m.three is defined but has no row in the table"
    ]
