"""docs/protocol.md is normative: its examples are checked and its requirement ids are whole.

Each check is a function of the text that returns what is wrong with it, so that a test can
feed it a doctored copy and see it fail: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import peepsy._errors as errors_module
from peepsy.protocol import RemoteProtocolError, parse
from tests._paths import DOCS, SCHEMA_DIR, load_json, schema_id, schema_registry, vectors

SPEC = (DOCS / "protocol.md").read_text(encoding="utf-8")

# --- requirements and their levels ----------------------------------------------------------

DEFINITION = re.compile(r"\*\*([A-Z]+-\d+)\*\*")
INDEX_HEADING = "## 19. Requirement index"
INDEX_ROW = re.compile(r"^\| ([A-Z]+-\d+) \| ([^|]*) \|", re.MULTILINE)
#: Any token shaped like a requirement id; UTF-8 and UTF-16 are the only ones that are not.
CITATION = re.compile(r"\b[A-Z]+-\d+\b")
NOT_A_CITATION = {"UTF-8", "UTF-16"}
KEYWORD = re.compile(
    r"\b(MUST NOT|MUST|REQUIRED|SHALL NOT|SHALL|SHOULD NOT|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b"
)
LEVEL_OF_KEYWORD = {
    "MUST NOT": "MUST",
    "MUST": "MUST",
    "REQUIRED": "MUST",
    "SHOULD NOT": "SHOULD",
    "SHOULD": "SHOULD",
    "RECOMMENDED": "SHOULD",
    "MAY": "MAY",
    "OPTIONAL": "MAY",
}
LEVELS = ("MUST", "SHOULD", "MAY", "—")
#: The one paragraph outside the requirements that may name the key words: it defines them.
CONVENTIONS = re.compile(r"^The key words MUST.*?(?=\n\n)", re.MULTILINE | re.DOTALL)
#: A requirement's text ends at a blank line, a heading, a table or the next list item.
TEXT_END = re.compile(r"\n(?=\n|#|\| |- )")


def requirement_texts(spec: str) -> list[tuple[str, str]]:
    """Each requirement id in text order, with its text: from its bold id to the end of its
    list item (nested lines, such as REQ-9's numbered steps, included)."""
    found: list[tuple[str, str]] = []
    for match in DEFINITION.finditer(spec):
        end = TEXT_END.search(spec, match.end())
        found.append((match.group(1), spec[match.end() : end.start() if end else len(spec)]))
    return found


def level_of(text: str) -> str:
    """The strongest RFC 2119 key word in a text: MUST > SHOULD > MAY > none (—)."""
    levels = {LEVEL_OF_KEYWORD.get(word, "MUST") for word in KEYWORD.findall(text)}
    return next((level for level in LEVELS if level in levels), "—")


def index_rows(spec: str) -> list[tuple[str, str]]:
    start = spec.find(INDEX_HEADING)
    if start < 0:
        return []
    end = spec.find("\n## ", start + len(INDEX_HEADING))
    section = spec[start : end if end >= 0 else len(spec)]
    return [(rid, level.strip()) for rid, level in INDEX_ROW.findall(section)]


def index_problems(spec: str) -> list[str]:
    """(a) the index lists exactly the defined ids, once each, in text order;
    (b) each id's indexed level is the strongest key word in its text."""
    problems: list[str] = []
    texts = requirement_texts(spec)
    defined = [rid for rid, _ in texts]
    indexed = index_rows(spec)
    indexed_ids = [rid for rid, _ in indexed]
    for rid in sorted({r for r in defined if defined.count(r) > 1}):
        problems.append(f"{rid} is defined more than once")
    for rid in sorted({r for r in indexed_ids if indexed_ids.count(r) > 1}):
        problems.append(f"{rid} is indexed more than once")
    for rid in sorted(set(defined) - set(indexed_ids)):
        problems.append(f"{rid} is defined but not indexed")
    for rid in sorted(set(indexed_ids) - set(defined)):
        problems.append(f"{rid} is indexed but not defined")
    if not problems and indexed_ids != defined:
        problems.append("the index does not follow the order of the text")
    levels = dict(indexed)
    for rid, text in texts:
        if rid not in levels:
            continue
        if levels[rid] not in LEVELS:
            problems.append(f"{rid} is indexed with level {levels[rid]!r}, not one of {LEVELS}")
        elif levels[rid] != level_of(text):
            problems.append(f"{rid} is indexed {levels[rid]} but its text says {level_of(text)}")
    return problems


def citation_problems(spec: str) -> list[str]:
    """(c) every id the text cites, anywhere (prose, tables, the index), is defined."""
    defined = {rid for rid, _ in requirement_texts(spec)}
    cited = set(CITATION.findall(spec)) - NOT_A_CITATION
    return [f"{rid} is cited but not defined" for rid in sorted(cited - defined)]


def keyword_problems(spec: str) -> list[str]:
    """Key words appear only inside requirements (and where they are defined, and as the
    index's levels), so that every rule has an id and a level; SHALL is not used at all."""
    rest = CONVENTIONS.sub("", spec.partition(INDEX_HEADING)[0], count=1)
    for rid, text in requirement_texts(spec):
        rest = rest.replace(f"**{rid}**{text}", f"**{rid}**")
    problems = [f"key word {word} outside any requirement" for word in KEYWORD.findall(rest)]
    problems += [f"{rid} uses SHALL" for rid, text in requirement_texts(spec) if "SHALL" in text]
    return problems


def test_the_text_has_requirements() -> None:
    texts = dict(requirement_texts(SPEC))
    assert len(texts) >= 70
    # A requirement's text takes in its nested steps, and stops at its list item's end.
    assert "6. otherwise it is run" in texts["REQ-9"]
    assert "readable exactly when" not in texts["REQ-9"]
    assert texts["NODE-1"].rstrip().endswith("them silently.")


def test_index_lists_every_defined_id_once_with_its_level() -> None:
    assert index_problems(SPEC) == []


def test_every_cited_id_is_defined() -> None:
    assert citation_problems(SPEC) == []


def test_key_words_appear_only_in_requirements() -> None:
    assert keyword_problems(SPEC) == []


#: The levels the issue 8 decisions fixed (their "at a glance" list), with
#: READY-3, the master-side half of the old READY-1, so that READY-1 can stay MAY.
DECIDED_LEVELS = {
    "HB-1": "SHOULD",
    "HB-4": "MUST",
    "SHUT-1": "MUST",
    "SHUT-2": "MUST",
    "SHUT-4": "MUST",
    "SHUT-5": "MUST",
    "SHUT-6": "SHOULD",
    "SHUT-7": "MUST",
    "STREAM-3": "MUST",
    "MSG-7": "MUST",
    "MSG-8": "SHOULD",
    "MSG-9": "MUST",
    "READY-1": "MAY",
    "READY-2": "MUST",
    "READY-3": "MUST",
    "REQ-4": "MUST",
    "REQ-6": "SHOULD",
    "REQ-9": "MUST",
    "REQ-10": "MUST",
    "REQ-11": "MUST",
    "FRAME-6": "MUST",
    "FRAME-9": "MUST",
    "FRAME-10": "SHOULD",
    "FRAME-11": "MUST",
    "FRAME-12": "SHOULD",
    "RESP-3": "MUST",
    "RESP-4": "MUST",
    "RESP-7": "SHOULD",
    "RESP-8": "SHOULD",
    "SCHED-3": "MUST",
}


def test_the_decided_levels_hold() -> None:
    levels = {rid: level_of(text) for rid, text in requirement_texts(SPEC)}
    assert {rid: levels.get(rid) for rid in DECIDED_LEVELS} == DECIDED_LEVELS


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("A child MUST NOT do it, and SHOULD log.", "MUST"),
        ("It is REQUIRED.", "MUST"),
        ("It SHOULD NOT; it MAY.", "SHOULD"),
        ("It is RECOMMENDED.", "SHOULD"),
        ("It is OPTIONAL.", "MAY"),
        ("A child may, and must, in lower case.", "—"),
        ("MUSTARD and MAYBE are not key words.", "—"),
    ],
)
def test_level_of(text: str, level: str) -> None:
    assert level_of(text) == level


def _doctor(old: str, new: str) -> str:
    assert SPEC.count(old) == 1, old
    return SPEC.replace(old, new)


def test_the_index_check_fails_on_a_doctored_text() -> None:
    row = "| HB-4 | MUST | once heartbeating, a child goes on while its handlers run |\n"
    assert "HB-4 is defined but not indexed" in index_problems(_doctor(row, ""))
    assert "HB-4 is indexed more than once" in index_problems(_doctor(row, row + row))
    assert "HB-5 is indexed but not defined" in index_problems(
        _doctor(row, row + row.replace("HB-4", "HB-5"))
    )
    twice = _doctor("- **HB-3** A master", "- **HB-4** A master")
    assert "HB-4 is defined more than once" in index_problems(twice)
    swapped = _doctor(row, "").replace("| HB-3 |", row + "| HB-3 |")
    assert index_problems(swapped) == ["the index does not follow the order of the text"]


def test_the_level_check_fails_on_a_doctored_text() -> None:
    # HB-1 said SHOULD in the index but MUST NOT in its text before issue 8.
    doctored = _doctor("from its first second on.", "from its first second on; MUST NOT stop.")
    assert index_problems(doctored) == ["HB-1 is indexed SHOULD but its text says MUST"]
    relabelled = _doctor("| SHUT-1 | MUST |", "| SHUT-1 | SHOULD |")
    assert index_problems(relabelled) == ["SHUT-1 is indexed SHOULD but its text says MUST"]
    unknown = _doctor("| SHUT-1 | MUST |", "| SHUT-1 | MUST? |")
    assert len(index_problems(unknown)) == 1


def test_the_citation_check_fails_on_a_doctored_text() -> None:
    doctored = _doctor("(SHUT-1, SHUT-7)", "(SHUT-1, SHUT-70)")
    assert citation_problems(doctored) == ["SHUT-70 is cited but not defined"]


def test_the_key_word_check_fails_on_a_doctored_text() -> None:
    doctored = _doctor(
        "Member order carries no meaning.", "Member order carries no meaning; peers MUST NOT care."
    )
    assert keyword_problems(doctored) == ["key word MUST NOT outside any requirement"]
    assert keyword_problems(_doctor("A child MAY send READY.", "A child SHALL send READY.")) == [
        "READY-1 uses SHALL"
    ]


# --- examples --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    line_no: int
    text: str
    invalid_rule: str | None


def examples(spec: str) -> list[Example]:
    """Each line of each ```json block; `<!-- example: invalid ID -->` before a block marks
    its lines invalid because of requirement ID."""
    found: list[Example] = []
    pattern = re.compile(r"(<!-- example: invalid ([A-Z]+-\d+) -->\n)?```json\n(.*?)```", re.DOTALL)
    for match in pattern.finditer(spec):
        start = spec.count("\n", 0, match.start(3)) + 1
        for offset, line in enumerate(match.group(3).splitlines()):
            if line.strip():
                found.append(Example(start + offset, line, match.group(2)))
    return found


EXAMPLES = examples(SPEC)
VALIDATOR = Draft202012Validator({"$ref": schema_id("message.json")}, registry=schema_registry())


def example_problem(example: Example) -> str | None:
    """What is wrong with an example: a valid one must pass the schema and the reference
    parser, an invalid one must fail both."""
    value: Any = json.loads(example.text)
    schema_ok = VALIDATOR.is_valid(value)
    try:
        parse(example.text.encode())
        parser_ok = True
    except RemoteProtocolError:
        parser_ok = False
    want = example.invalid_rule is None
    if schema_ok != want:
        return f"line {example.line_no}: the schema calls it {'valid' if schema_ok else 'invalid'}"
    if parser_ok != want:
        return f"line {example.line_no}: the parser calls it {'valid' if parser_ok else 'invalid'}"
    return None


def test_the_spec_has_examples_of_each_kind() -> None:
    valid = [e for e in EXAMPLES if e.invalid_rule is None]
    invalid = [e for e in EXAMPLES if e.invalid_rule is not None]
    kinds = {json.loads(e.text)["type"] for e in valid}
    assert kinds == {"INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN", "CANCEL"}
    assert len(invalid) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"line{e.line_no}")
def test_spec_example(example: Example) -> None:
    assert example_problem(example) is None


def test_the_example_check_fails_on_a_doctored_text() -> None:
    unmarked = _doctor("<!-- example: invalid REQ-10 -->\n", "")
    problems = [p for e in examples(unmarked) if (p := example_problem(e))]
    assert len(problems) == 1
    assert problems[0].endswith("the schema calls it invalid")
    shutdown = '```json\n{"type":"SHUTDOWN"'
    marked = _doctor(shutdown, "<!-- example: invalid MSG-2 -->\n" + shutdown)
    problems = [p for e in examples(marked) if (p := example_problem(e))]
    assert len(problems) == 1
    assert problems[0].endswith("the schema calls it valid")


def test_invalid_examples_cite_defined_requirements() -> None:
    defined = {rid for rid, _ in requirement_texts(SPEC)}
    assert {e.invalid_rule for e in EXAMPLES if e.invalid_rule} <= defined


# --- member tables against the schema ---------------------------------------------------------

MEMBER_TABLE = re.compile(
    r"^\| member \| type \| required \| meaning \|\n\|[-|]+\|\n((?:\|.*\n)+)", re.MULTILINE
)
SCHEMA_LINK = re.compile(r"\(\.\./schema/([a-z-]+\.json)\)(?: `\$defs/(\w+)`)?")
#: Members the issue 8 decisions add, which the schema gains in its own change. Once the
#: schema has them, they are checked like any other.
PENDING = {
    "init.json": {"maxConcurrency", "maxLineBytes"},
    "ready.json": {"maxConcurrency", "maxLineBytes"},
}


def _schema_members(name: str, definition: str | None) -> tuple[set[str], set[str]]:
    schema: dict[str, Any] = load_json(SCHEMA_DIR / name)
    if definition:
        schema = schema["$defs"][definition]
    return set(schema["properties"]), set(schema.get("required", []))


def member_table_problems(spec: str) -> list[str]:
    """Each member table lists its schema's properties, marking exactly the required ones."""
    problems: list[str] = []
    tables = list(MEMBER_TABLE.finditer(spec))
    for table in tables:
        links = list(SCHEMA_LINK.finditer(spec, 0, table.start()))
        name, definition = links[-1].group(1), links[-1].group(2)
        where = name + (f" $defs/{definition}" if definition else "")
        properties, required = _schema_members(name, definition)
        rows = [row.split("|")[1:4] for row in table.group(1).splitlines()]
        listed = {member.strip().strip("`") for member, _, _ in rows}
        marked = {member.strip().strip("`") for member, _, req in rows if req.strip() == "yes"}
        pending = PENDING.get(name, set()) if not definition else set()
        for member in sorted(listed - properties - pending):
            problems.append(f"{where}: the table lists {member}, which the schema lacks")
        for member in sorted(properties - listed):
            problems.append(f"{where}: the schema has {member}, which the table lacks")
        if marked != required:
            problems.append(
                f"{where}: required {sorted(marked)} in the table, {sorted(required)} in the schema"
            )
    if len(tables) < 8:
        problems.append(f"only {len(tables)} member tables found")
    return problems


def test_member_tables_match_the_schema() -> None:
    assert member_table_problems(SPEC) == []


def test_the_member_table_check_fails_on_a_doctored_text() -> None:
    doctored = _doctor(
        "| `requestsActive` | integer >= 0 | no |", "| `requestsActiv` | integer >= 0 | yes |"
    )
    assert member_table_problems(doctored) == [
        "heartbeat.json: the table lists requestsActiv, which the schema lacks",
        "heartbeat.json: the schema has requestsActive, which the table lacks",
        "heartbeat.json: required ['pid', 'requestsActiv', 'timestamp', 'type'] in the table, "
        "['pid', 'timestamp', 'type'] in the schema",
    ]


# --- ids cited from elsewhere ------------------------------------------------------------------


def test_every_rule_cited_by_the_vectors_and_the_errors_exists() -> None:
    cited = {v["rule"] for v in vectors() if "rule" in v}
    for _, cls in inspect.getmembers(errors_module, inspect.isclass):
        if issubclass(cls, RemoteProtocolError):
            cited.add(cls.rule)
    defined = {rid for rid, _ in requirement_texts(SPEC)}
    assert cited - defined == set()
