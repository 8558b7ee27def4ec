"""Where the repository's data lives, for tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schema"
VECTORS = ROOT / "conformance" / "vectors" / "messages.json"
DOCS = ROOT / "docs"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def schema_registry() -> Registry[Any]:
    """Every file of schema/ under its $id, so relative refs resolve without a network."""
    resources = [
        Resource.from_contents(load_json(path)) for path in sorted(SCHEMA_DIR.glob("*.json"))
    ]
    return Registry().with_resources((r.id() or "", r) for r in resources)


def schema_id(name: str) -> str:
    return str(load_json(SCHEMA_DIR / name)["$id"])


def vectors() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = load_json(VECTORS)["vectors"]
    return data
