"""Inline the per-message schemas of ``schema/`` into one bundle with only local refs.

Code generators and hypothesis-jsonschema handle a single document whose refs are all
``#/$defs/Name`` far better than a web of files: classes keep their titles as names.
Every definition is stored under its ``title``, so the bundle's names are the public names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
BUNDLE_NAME = "bundle.json"
BUNDLE_ID = "https://peepsy.dev/schema/1/bundle.json"
# Files whose root is a message union: they stay unions in the bundle, after the messages.
UNION_FILES = ("master-message.json", "child-message.json", "message.json")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


def source_files() -> list[str]:
    """The schema files the bundle is made from, in a stable order."""
    return sorted(p.name for p in SCHEMA_DIR.glob("*.json") if p.name != BUNDLE_NAME)


def _file_titles() -> dict[str, str]:
    return {name: _load(name)["title"] for name in source_files()}


def _rewrite(node: Any, titles: dict[str, str], here: str) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref":
                out[key] = _local_ref(value, titles, here)
            elif key in ("$schema", "$id", "$defs"):
                continue
            else:
                out[key] = _rewrite(value, titles, here)
        return out
    if isinstance(node, list):
        return [_rewrite(item, titles, here) for item in node]
    return node


def _local_ref(ref: str, titles: dict[str, str], here: str) -> str:
    file_part, _, pointer = ref.partition("#")
    if pointer and not pointer.startswith("/$defs/"):
        raise ValueError(f"{here}: only refs to a file root or to /$defs/Name are bundled: {ref}")
    if pointer:
        # Definitions keep their own names; they are unique across files (checked below).
        return "#/$defs/" + pointer.removeprefix("/$defs/")
    return "#/$defs/" + titles[file_part or here]


def build_bundle() -> dict[str, Any]:
    """Return the bundle as a JSON-ready dict (deterministic for the same sources)."""
    titles = _file_titles()
    defs: dict[str, Any] = {}

    def add(name: str, schema: dict[str, Any], origin: str) -> None:
        if name in defs:
            raise ValueError(f"definition {name!r} from {origin} is defined twice")
        defs[name] = schema

    ordered = [n for n in source_files() if n not in UNION_FILES] + list(UNION_FILES)
    for name in ordered:
        doc = _load(name)
        for def_name, sub in doc.get("$defs", {}).items():
            add(def_name, _rewrite(sub, titles, name), name)
        if set(doc) - {"$schema", "$id", "$defs", "title", "description"}:
            add(titles[name], _rewrite(doc, titles, name), name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BUNDLE_ID,
        "title": "PeepsyBundle",
        "description": (
            "GENERATED from the files of schema/ by `python -m tools.generate`; do not edit. "
            "Every peepsy message schema, with local refs only. The root accepts any message."
        ),
        "$ref": "#/$defs/Message",
        "$defs": defs,
    }


def render_bundle() -> str:
    return json.dumps(build_bundle(), indent=2, ensure_ascii=False) + "\n"
