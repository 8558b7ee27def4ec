"""The JSON Schemas the suite checks against: schema/ (messages) and the transcript
format (conformance/transcript.schema.json), as shipped in the package."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any


def data_dir() -> Path:
    """The folder that holds schema/ and conformance/: inside the package when installed
    from a wheel, the repository's top otherwise (a checkout or an editable install)."""
    return find_data_dir(Path(str(files("peepsy"))))


def find_data_dir(package: Path) -> Path:
    """Where schema/ and conformance/ are for the ``peepsy`` package at ``package``.

    One rule for every way peepsy is installed: a wheel carries them in ``_data/``; a
    source tree keeps them beside the package, where they are the source of truth (no
    copy, no symlink to go stale). Neither is an install that lost its data, said plainly
    rather than as a missing transcript deep in a run.
    """
    for candidate in (package / "_data", package.parent):
        if (candidate / "schema").is_dir() and (candidate / "conformance").is_dir():
            return candidate
    raise FileNotFoundError(
        f"peepsy's schemas and transcripts are missing: neither {package / '_data'} nor "
        f"{package.parent} holds schema/ and conformance/; reinstall peepsy from a wheel"
    )


def builtin_transcripts() -> Path:
    return data_dir() / "conformance" / "transcripts"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _jsonschema() -> tuple[Any, Any]:
    try:
        # Imported here: the core of peepsy does not need jsonschema.
        from jsonschema import Draft202012Validator  # noqa: PLC0415
        from referencing import Registry, Resource  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            "the conformance suite needs jsonschema: pip install 'peepsy[conformance]'"
        ) from exc
    resources = [
        Resource.from_contents(load_json(p)) for p in sorted((data_dir() / "schema").glob("*.json"))
    ]
    registry: Any = Registry().with_resources((r.id() or "", r) for r in resources)
    return Draft202012Validator, registry


@cache
def _transcript_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_json(data_dir() / "conformance" / "transcript.schema.json")
    return schema


def json_path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def schema_errors(name: str, value: Any) -> list[str]:
    """Problems of ``value`` against ``schema/NAME`` (empty when valid)."""
    validator_cls, registry = _jsonschema()
    validator = validator_cls({"$ref": f"https://peepsy.dev/schema/1/{name}"}, registry=registry)
    return [f"{json_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)][:5]


def step_ops() -> tuple[str, ...]:
    """The keys that name a step's operation, in the order transcript.schema.json's
    ``Step`` lists its branches (each branch requires its operation first)."""
    return tuple(branch["required"][0] for branch in _transcript_schema()["$defs"]["Step"]["oneOf"])


def record_problems(record: Any, *, header: bool) -> list[str]:
    """What is wrong with one transcript line, in words that name the member at fault."""
    validator_cls, _ = _jsonschema()
    schema = _transcript_schema()
    defs = schema["$defs"]
    if header:
        sub: dict[str, Any] = defs["Header"]
        where = "header"
    else:
        if not isinstance(record, dict):
            return [f"a step is a JSON object, not {json.dumps(record)[:40]}"]
        all_ops = step_ops()
        ops = [op for op in all_ops if op in record]
        if not ops:
            return [
                f"a step needs one of {', '.join(all_ops)}; this one has "
                f"{', '.join(sorted(record)) or 'no member'}"
            ]
        if len(ops) > 1:
            return [f"a step has one operation; this one has {', '.join(ops)}"]
        branch = all_ops.index(ops[0])
        sub = defs["Step"]["oneOf"][branch]
        where = ops[0]
    validator = validator_cls({**sub, "$defs": defs})
    return [
        f"{where} {json_path(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    ][:3]
