"""docs/protocol.md is normative: its examples are checked and its requirement ids are whole."""

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
from tests._paths import DOCS, schema_id, schema_registry, vectors

SPEC = (DOCS / "protocol.md").read_text(encoding="utf-8")
REQUIREMENT = re.compile(r"\*\*([A-Z]+-\d+)\*\*")
INDEX_ROW = re.compile(r"^\| ([A-Z]+-\d+) \| (MUST|SHOULD|MAY|—) \|", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    line_no: int
    text: str
    invalid_rule: str | None


def _examples() -> list[Example]:
    found: list[Example] = []
    pattern = re.compile(r"(<!-- example: invalid ([A-Z]+-\d+) -->\n)?```json\n(.*?)```", re.DOTALL)
    for match in pattern.finditer(SPEC):
        start = SPEC.count("\n", 0, match.start(3)) + 1
        for offset, line in enumerate(match.group(3).splitlines()):
            if line.strip():
                found.append(Example(start + offset, line, match.group(2)))
    return found


EXAMPLES = _examples()
VALIDATOR = Draft202012Validator({"$ref": schema_id("message.json")}, registry=schema_registry())


def test_the_spec_has_examples_of_each_kind() -> None:
    valid = [e for e in EXAMPLES if e.invalid_rule is None]
    invalid = [e for e in EXAMPLES if e.invalid_rule is not None]
    kinds = {json.loads(e.text)["type"] for e in valid}
    assert kinds == {"INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN"}
    assert len(invalid) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"line{e.line_no}")
def test_spec_example(example: Example) -> None:
    value: Any = json.loads(example.text)
    if example.invalid_rule is None:
        assert VALIDATOR.is_valid(value), list(VALIDATOR.iter_errors(value))
        parse(example.text.encode())
    else:
        assert not VALIDATOR.is_valid(value)
        with pytest.raises(RemoteProtocolError):
            parse(example.text.encode())


def test_requirement_ids_are_defined_once_and_indexed() -> None:
    defined = REQUIREMENT.findall(SPEC)
    duplicates = {rid for rid in defined if defined.count(rid) > 1}
    assert not duplicates
    indexed = INDEX_ROW.findall(SPEC)
    assert [rid for rid, _ in indexed] == defined, "the index lists every id in text order"


def _defined() -> set[str]:
    return set(REQUIREMENT.findall(SPEC))


def test_every_cited_rule_exists() -> None:
    cited = {v["rule"] for v in vectors() if "rule" in v}
    for _, cls in inspect.getmembers(errors_module, inspect.isclass):
        if issubclass(cls, RemoteProtocolError):
            cited.add(cls.rule)
    missing = cited - _defined()
    assert not missing


def test_every_cross_reference_exists() -> None:
    referenced = set(re.findall(r"\(([A-Z]+-\d+)[,)]", SPEC))
    assert referenced
    assert referenced <= _defined()
