"""Every MUST and SHOULD of docs/protocol.md is checked by the suite, or says why not.

The requirement index of docs/protocol.md (section 19) gives each id its level;
conformance/README.md ("Requirements and their checks") gives each MUST and SHOULD id the
checks that cite it, or an exemption. The checks themselves (transcript headers and the
checks over every run) say what they cite and at what severity. These tests hold the
three together, so that a new requirement, a new check or a changed level cannot leave
the table behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import load_all
from tests.conformance._cli import ROOT

PROTOCOL = ROOT / "docs" / "protocol.md"
README = ROOT / "conformance" / "README.md"
INDEX_ROW = re.compile(r"^\| ([A-Z]+-[0-9]+) \| (MUST|SHOULD|MAY|—) \|", re.M)
TRACE_ROW = re.compile(r"^\| ([A-Z]+-[0-9]+) \| (MUST|SHOULD) \| ([^|]*) \| ([^|]*) \|$", re.M)
#: Ids issue 8 introduced: an index without them is the text from before it.
ISSUE_8_IDS = ("HB-4", "READY-2", "REQ-9", "SHUT-7", "FRAME-11")
#: Requirements whose checks are stricter than the requirement: the check's severity
#: when it cites one of these first. CANCEL-4 asks handlers in general to stop when
#: cancelled (a SHOULD), but the profile's sleep is defined to stop at the cancel level
#: (conformance/README.md, the conformance profile): a worker whose sleep runs on after
#: its CANCEL does not reach that level.
STRICTER = {"CANCEL-4": "MUST"}


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def requirement_index(text: str) -> dict[str, str]:
    """id -> level, from the protocol's requirement index."""
    return dict(INDEX_ROW.findall(section(text, "19. Requirement index")))


@dataclass(frozen=True, slots=True)
class Row:
    level: str
    checks: frozenset[str]
    exemption: str


def trace_table(text: str) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for rid, level, checks, exemption in TRACE_ROW.findall(
        section(text, "Requirements and their checks")
    ):
        assert rid not in rows, f"{rid} has two rows"
        rows[rid] = Row(level, frozenset(re.findall(r"`([a-z0-9.-]+)`", checks)), exemption.strip())
    return rows


def suite_checks() -> dict[str, tuple[str, tuple[str, ...]]]:
    """check id -> (severity, requirements cited, the first first)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {
        t.check: (t.severity, t.requirement) for t in load_all([builtin_transcripts()])
    }
    out |= {g.check: (g.severity, g.requirement) for g in GLOBAL_CHECKS}
    return out


def problems(protocol: str, readme: str) -> list[str]:
    """Everything on which the index, the table and the checks disagree."""
    index = requirement_index(protocol)
    table = trace_table(readme)
    checks = suite_checks()
    out = []
    for check, (severity, cited) in sorted(checks.items()):
        unknown = [rid for rid in cited if rid not in index]
        if unknown:
            out.append(f"{check} cites {unknown}, which the index does not have")
        elif severity != STRICTER.get(cited[0], index[cited[0]]):
            level = index[cited[0]]
            if cited[0] in STRICTER:
                level += f", {STRICTER[cited[0]]} for its checks"
            out.append(f"{check} is {severity}, but its first requirement {cited[0]} is {level}")
    for rid, level in index.items():
        if level not in ("MUST", "SHOULD"):
            if rid in table:
                out.append(f"{rid} is {level}: it needs no row")
            continue
        row = table.get(rid)
        citing = frozenset(c for c, (_, cited) in checks.items() if rid in cited)
        if row is None:
            out.append(f"{rid} ({level}) has no row")
            continue
        if row.level != level:
            out.append(f"{rid}: the row says {row.level}, the index {level}")
        if row.checks != citing:
            out.append(
                f"{rid}: the row lists {sorted(row.checks)}, the checks citing it are"
                f" {sorted(citing)}"
            )
        if not citing and not row.exemption:
            out.append(f"{rid} ({level}) has neither a check nor an exemption")
        if citing and row.exemption:
            out.append(f"{rid} has checks and an exemption: the exemption is stale")
    out += [f"{rid}: a row for an id the index does not have" for rid in table if rid not in index]
    return out


def test_every_requirement_is_checked_or_exempt() -> None:
    protocol = PROTOCOL.read_text(encoding="utf-8")
    if not all(rid in requirement_index(protocol) for rid in ISSUE_8_IDS):
        # This branch's docs/protocol.md is the text before issue 8; the table follows
        # the new text (branch issue8-spec), which replaces it when the branches merge.
        pytest.skip("docs/protocol.md predates issue 8's requirement index")
    assert problems(protocol, README.read_text(encoding="utf-8")) == []


INDEX = """
## 19. Requirement index

| id | level | summary |
|---|---|---|
| A-1 | MUST | a |
| A-2 | SHOULD | b |
| A-3 | MAY | c |
| B-1 | MUST | master only |
"""


def readme(rows: str) -> str:
    return (
        "\n## Requirements and their checks\n\n| requirement | level | checks | exemption |\n"
        f"|---|---|---|---|\n{rows}\n## Next\n"
    )


def test_the_test_finds_each_kind_of_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison itself can fail: an unlisted id, a stale row, a wrong level, a
    missing exemption and a severity that is not its first requirement's level."""
    fake = {"a.one": ("MUST", ("A-1",)), "a.two": ("MUST", ("A-2", "A-1"))}
    monkeypatch.setattr(f"{__name__}.suite_checks", lambda: fake)
    good = readme(
        "| A-1 | MUST | `a.one`, `a.two` |  |\n| A-2 | SHOULD | `a.two` |  |\n"
        "| B-1 | MUST |  | a master requirement |"
    )
    assert problems(INDEX, good) == ["a.two is MUST, but its first requirement A-2 is SHOULD"]
    fake["a.two"] = ("SHOULD", ("A-2", "A-1"))
    assert problems(INDEX, good) == []
    assert problems(INDEX, good.replace("| B-1 | MUST |  | a master requirement |", "")) == [
        "B-1 (MUST) has no row"
    ]
    assert problems(INDEX, good.replace("a master requirement", "")) == [
        "B-1 (MUST) has neither a check nor an exemption"
    ]
    assert problems(INDEX, good.replace("| A-2 | SHOULD | `a.two`", "| A-2 | SHOULD | ")) == [
        "A-2: the row lists [], the checks citing it are ['a.two']"
    ]
    assert problems(INDEX, good.replace("| A-2 | SHOULD |", "| A-2 | MUST |")) == [
        "A-2: the row says MUST, the index SHOULD"
    ]
    assert problems(INDEX, good + "| C-9 | MUST | | gone |\n") == []  # outside the section
    stale = good.replace("a master requirement |", "a master requirement |\n| C-9 | MUST |  | x |")
    assert problems(INDEX, stale) == ["C-9: a row for an id the index does not have"]
    fake["a.three"] = ("MUST", ("Z-1",))
    assert problems(INDEX, good) == ["a.three cites ['Z-1'], which the index does not have"]


def test_a_stricter_requirement_sets_the_severity_of_its_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check citing a STRICTER requirement first has that severity, not the index's;
    any other severity is still caught."""
    monkeypatch.setattr(f"{__name__}.STRICTER", {"A-2": "MUST"})
    fake = {"a.one": ("MUST", ("A-1",)), "a.two": ("MUST", ("A-2", "A-1"))}
    monkeypatch.setattr(f"{__name__}.suite_checks", lambda: fake)
    good = readme(
        "| A-1 | MUST | `a.one`, `a.two` |  |\n| A-2 | SHOULD | `a.two` |  |\n"
        "| B-1 | MUST |  | a master requirement |"
    )
    assert problems(INDEX, good) == []
    fake["a.two"] = ("SHOULD", ("A-2", "A-1"))
    assert problems(INDEX, good) == [
        "a.two is SHOULD, but its first requirement A-2 is SHOULD, MUST for its checks"
    ]
