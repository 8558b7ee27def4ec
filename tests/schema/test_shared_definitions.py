"""Every shared definition of schema/common.json is generated once and used by name (issue 9).

The generator can inline a referenced definition at each use (``--collapse-root-models``
does): the mode literal, the 1..300000 bound of TimeoutMs and the other limits then sit
in every model that uses them, and drift apart the day one copy is edited by hand. These
checks read ``_generated.py`` with ``ast`` and hold it to: one alias per definition, and
every field whose schema refs a definition names that alias.
"""

from __future__ import annotations

import ast
from functools import cache
from typing import Any

import pytest

import peepsy.protocol
from peepsy.protocol import _generated
from tests._paths import SCHEMA_DIR, load_json
from tools import generate

COMMON_DEFS = sorted(load_json(SCHEMA_DIR / "common.json")["$defs"])
REF_PREFIX = "#/$defs/"


@cache
def _source() -> str:
    return generate.MODELS_PATH.read_text(encoding="utf-8")


@cache
def _module() -> ast.Module:
    return ast.parse(_source())


def _assignments(name: str) -> list[ast.Assign | ast.AnnAssign]:
    found: list[ast.Assign | ast.AnnAssign] = []
    for node in _module().body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            found.append(node)
    return found


def _classes() -> dict[str, ast.ClassDef]:
    return {n.name: n for n in _module().body if isinstance(n, ast.ClassDef)}


def _alias_sources() -> list[str]:
    segments = []
    for name in COMMON_DEFS:
        for node in _assignments(name):
            segment = ast.get_source_segment(_source(), node)
            assert segment is not None
            segments.append(segment)
    return segments


def _outside_aliases() -> str:
    text = _source()
    for segment in _alias_sources():
        text = text.replace(segment, "")
    return text


def _wire_name(field: ast.AnnAssign) -> str:
    """The member name on the wire: the ``Field(alias=...)`` if any, else the attribute."""
    assert isinstance(field.target, ast.Name)
    for node in ast.walk(field.annotation):
        if isinstance(node, ast.keyword) and node.arg == "alias":
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    return field.target.id


def _common_refs(node: Any) -> set[str]:
    """Names of the common definitions a (sub)schema refers to, at any depth."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.removeprefix(REF_PREFIX) in COMMON_DEFS:
            found.add(ref.removeprefix(REF_PREFIX))
        for value in node.values():
            found |= _common_refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_common_refs(item) for item in node))
    return set()


def _model_properties() -> list[tuple[str, str, set[str]]]:
    """(model, wire member, common defs it refs) for every model property that refs one."""
    bundle = load_json(SCHEMA_DIR / "bundle.json")
    classes = _classes()
    out = []
    for model, schema in bundle["$defs"].items():
        if model not in classes:
            continue
        for member, sub in schema.get("properties", {}).items():
            refs = _common_refs(sub)
            if refs:
                out.append((model, member, refs))
    return out


def test_the_schema_has_shared_definitions_to_check() -> None:
    assert {"ProcessingMode", "TimeoutMs", "RequestId", "ActionName"} <= set(COMMON_DEFS)
    # The field check below only means something if fields actually ref them.
    assert len(_model_properties()) >= 15


@pytest.mark.parametrize("name", COMMON_DEFS)
def test_each_shared_definition_is_generated_exactly_once(name: str) -> None:
    assignments = _assignments(name)
    assert len(assignments) == 1, f"{name} is assigned {len(assignments)} times in _generated.py"
    # A named alias, not a RootModel class (which would change validation and dumps).
    assert name not in _classes()
    assert getattr(_generated, name) is not None


@pytest.mark.parametrize("name", COMMON_DEFS)
def test_no_model_inlines_a_shared_definition(name: str) -> None:
    # An inlined copy carries the definition's title in its Field(...).
    assert f'title="{name}"' not in _outside_aliases()


def test_the_mode_literal_and_timeout_bound_live_only_in_their_aliases() -> None:
    rest = _outside_aliases()
    assert "le=300000" not in rest
    assert '"sequential"' not in rest
    assert _source().count('Literal["sequential", "concurrent"]') == 1
    assert _source().count("le=300000") == 1


@pytest.mark.parametrize(
    ("model", "member", "refs"),
    _model_properties(),
    ids=[f"{m}.{p}" for m, p, _ in _model_properties()],
)
def test_every_field_that_refs_a_shared_definition_uses_its_alias(
    model: str, member: str, refs: set[str]
) -> None:
    fields = [
        node
        for node in _classes()[model].body
        if isinstance(node, ast.AnnAssign) and _wire_name(node) == member
    ]
    assert len(fields) == 1, f"{model}.{member} not found in _generated.py"
    used = {n.id for n in ast.walk(fields[0].annotation) if isinstance(n, ast.Name)}
    assert refs <= used, f"{model}.{member} should be typed with {sorted(refs - used)}"


def _definition_refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["schema_ref"]} if node.get("type") == "definition-ref" else set()
        for value in node.values():
            found |= _definition_refs(value)
        return found
    if isinstance(node, list | tuple):
        return set().union(*(_definition_refs(item) for item in node))
    return set()


def test_pydantic_inlines_the_aliases_so_validation_costs_the_same() -> None:
    # A TypeAliasType that pydantic kept as a definition would add an indirection to
    # every parse; today it inlines each one (validators identical to the inlined form).
    refs = _definition_refs(peepsy.protocol.MESSAGE_ADAPTER.core_schema)
    for cls in (getattr(_generated, n) for n in _classes()):
        refs |= _definition_refs(cls.__pydantic_core_schema__)
    prefix = f"{_generated.__name__}."
    aliases = {r.removeprefix(prefix).split(":")[0] for r in refs if r.startswith(prefix)}
    assert not aliases & set(COMMON_DEFS)
