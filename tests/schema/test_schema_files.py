"""schema/ is well-formed, self-consistent, and the generated files match it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests._paths import SCHEMA_DIR, load_json, schema_registry
from tools import generate, schema_bundle

SCHEMA_FILES = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = load_json(SCHEMA_DIR / name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_refd_schema_resolves(name: str) -> None:
    schema = load_json(SCHEMA_DIR / name)
    resolver = schema_registry().resolver(base_uri=schema["$id"])
    for ref in _refs(schema):
        if ref.startswith("#"):
            resolver.lookup(schema["$id"] + ref)
        else:
            resolver.lookup(ref)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _walk_objects(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.items():
            out += _walk_objects(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out += _walk_objects(item, f"{path}[{i}]")
    return out


@pytest.mark.parametrize("name", [n for n in SCHEMA_FILES if n != "bundle.json"])
def test_every_type_is_named_and_every_field_described(name: str) -> None:
    schema = load_json(SCHEMA_DIR / name)
    assert schema.get("title"), f"{name} has no title"
    assert schema.get("description"), f"{name} has no description"
    for path, node in _walk_objects(schema):
        for prop, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{name} {path}.properties.{prop} has no description"
        for def_name, sub in node.get("$defs", {}).items():
            assert sub.get("title") == def_name, f"{name}: $defs/{def_name} needs title {def_name}"
            assert sub.get("description"), f"{name}: $defs/{def_name} has no description"


def _integer_schemas(node: Any) -> list[dict[str, Any]]:
    return [obj for _, obj in _walk_objects(node) if obj.get("type") == "integer"]


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_integer_is_bounded_within_2_53(name: str) -> None:
    limit = 2**53 - 1
    for obj in _integer_schemas(load_json(SCHEMA_DIR / name)):
        assert "minimum" in obj
        assert "maximum" in obj
        assert -limit <= obj["minimum"] <= obj["maximum"] <= limit


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_string_is_bounded_or_free_text(name: str) -> None:
    # Names and ids carry length limits; free text (error messages, stacks) and version
    # strings (pattern-bounded) need none.
    free_text = {"message", "error", "stack"}
    for path, obj in _walk_objects(load_json(SCHEMA_DIR / name)):
        if obj.get("type") != "string":
            continue
        leaf = path.rsplit(".", 1)[-1]
        bounded = "maxLength" in obj or "pattern" in obj or "enum" in obj
        assert bounded or leaf in free_text, path


def test_message_types_are_the_documented_set() -> None:
    types = {
        load_json(SCHEMA_DIR / n)["properties"]["type"]["const"]
        for n in SCHEMA_FILES
        if "type" in load_json(SCHEMA_DIR / n).get("properties", {})
    }
    assert types == {"INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN", "CANCEL"}


def test_bundle_and_models_are_not_stale() -> None:
    diffs = generate.stale(generate.outputs())
    assert not diffs, "run `python -m tools.generate`:\n" + "\n".join(diffs)


def test_stale_check_reports_a_readable_diff(tmp_path: Any) -> None:
    target = tmp_path / "_generated.py"
    target.write_text("old line\n", encoding="utf-8")
    # Pretend the file lives in the repository so the diff header is relative.
    fake = generate.ROOT / "peepsy" / "protocol" / "_generated.py"
    text = fake.read_text(encoding="utf-8")
    diffs = generate.stale({fake: text + "# drift\n"})
    assert len(diffs) == 1
    assert "+# drift" in diffs[0]
    assert "peepsy/protocol/_generated.py (committed)" in diffs[0]


def test_generated_module_is_stamped_with_the_bundle_hash() -> None:
    import hashlib

    models = generate.MODELS_PATH.read_text(encoding="utf-8")
    bundle = (SCHEMA_DIR / "bundle.json").read_text(encoding="utf-8")
    digest = hashlib.sha256(bundle.encode("utf-8")).hexdigest()
    assert f"# source sha256: {digest}" in models
    assert "# regenerate: python -m tools.generate" in models
    assert models.startswith("# GENERATED FILE: DO NOT EDIT.")


def test_bundle_names_come_from_titles() -> None:
    bundle = schema_bundle.build_bundle()
    for name, sub in bundle["$defs"].items():
        assert sub["title"] == name
    # Nothing in the bundle points outside it.
    assert all(ref.startswith("#/$defs/") for ref in _refs(bundle))


def test_generated_classes_have_public_names() -> None:
    models = generate.MODELS_PATH.read_text(encoding="utf-8")
    classes = re.findall(r"^class (\w+)\(", models, flags=re.MULTILINE)
    assert set(classes) == {
        "Cancel",
        "ErrorPayload",
        "Heartbeat",
        "Init",
        "Ready",
        "RequestBody",
        "RequestLegacy",
        "RequestUnified",
        "Response",
        "Shutdown",
    }
