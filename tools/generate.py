"""Regenerate ``schema/bundle.json`` and ``peepsy/protocol/_generated.py`` from ``schema/``.

    python -m tools.generate           # rewrite both files
    python -m tools.generate --check   # exit 1 with a diff when either is stale

The generated module is stamped with the sha256 of the bundle it was made from, so a
reader can tell which schema a model file belongs to without running anything.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.schema_bundle import BUNDLE_NAME, SCHEMA_DIR, UNION_FILES, build_bundle, render_bundle

ROOT = SCHEMA_DIR.parent
MODELS_PATH = ROOT / "peepsy" / "protocol" / "_generated.py"
COMMAND = "python -m tools.generate"

# Flags checked to give strict, deterministic, mypy --strict clean output
# (shared/reference/toolchain-notes.md), plus: names from titles, snake_case
# attributes with camelCase wire aliases, unknown members ignored (forward
# compatibility, spec MSG-4) and constrained aliases instead of RootModels.
# `--collapse-root-models` (in the notes) is left out on purpose: it inlines every
# shared definition of common.json at each use. Without it each one becomes a single
# named alias (ProcessingMode, TimeoutMs, ...) that the fields refer to (issue 9).
CODEGEN_FLAGS = [
    "--input-file-type", "jsonschema",
    "--output-model-type", "pydantic_v2.BaseModel",
    "--target-python-version", "3.11",
    "--use-annotated",
    "--field-constraints",
    "--use-schema-description",
    "--use-field-description",
    "--disable-timestamp",
    "--enum-field-as-literal", "all",
    "--use-double-quotes",
    "--use-missing-sentinel",
    "--strict-types", "int", "str", "bool",
    "--formatters", "builtin",
    "--use-title-as-name",
    "--extra-fields", "ignore",
    "--snake-case-field",
    "--allow-population-by-field-name",
    "--use-type-alias",
]  # fmt: skip


def _codegen_input() -> dict[str, object]:
    """The bundle minus the message unions.

    Both REQUEST shapes carry ``"type": "REQUEST"``, so a generator can only emit a plain
    (slow, noisy) union; the discriminated union is written by hand in ``_messages.py``.
    """
    bundle = build_bundle()
    defs = bundle["$defs"]
    for name in UNION_FILES:
        title = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))["title"]
        del defs[title]
    return {
        "$schema": bundle["$schema"],
        "title": "PeepsyBundle",
        "description": "Root of the codegen input; the message models are the definitions.",
        "$defs": defs,
    }


def _header(bundle_text: str) -> str:
    digest = hashlib.sha256(bundle_text.encode("utf-8")).hexdigest()
    return (
        "# GENERATED FILE: DO NOT EDIT.\n"
        f"# source: schema/{BUNDLE_NAME} (bundled from schema/*.json)\n"
        f"# source sha256: {digest}\n"
        f"# regenerate: {COMMAND}\n"
        "# generator: datamodel-code-generator (flags in tools/generate.py)"
    )


# The one rewrite applied to the generator's output: pydantic 2.14 made the MISSING
# sentinel public and warns when it is imported from its old experimental home.
_REWRITES = (
    (
        "from pydantic.experimental.missing_sentinel import MISSING\n",
        "from pydantic import MISSING\n",
    ),
)


def render_models(bundle_text: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / BUNDLE_NAME
        out = Path(tmp) / "models.py"
        src.write_text(json.dumps(_codegen_input(), indent=2), encoding="utf-8")
        cmd = [
            sys.executable, "-m", "datamodel_code_generator",
            "--input", str(src), "--output", str(out),
            "--custom-file-header", _header(bundle_text),
            *CODEGEN_FLAGS,
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        text = out.read_text(encoding="utf-8")
    for old, new in _REWRITES:
        if old not in text:
            raise RuntimeError(f"generator output changed; revisit the rewrite of {old!r}")
        text = text.replace(old, new)
    return text


def outputs() -> dict[Path, str]:
    bundle_text = render_bundle()
    return {SCHEMA_DIR / BUNDLE_NAME: bundle_text, MODELS_PATH: render_models(bundle_text)}


def stale(expected: dict[Path, str]) -> list[str]:
    """Unified diffs between the committed files and freshly generated ones."""
    diffs = []
    for path, text in expected.items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            rel = path.relative_to(ROOT)
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{rel} (committed)",
                        f"{rel} (generated)",
                    )
                )
            )
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail with a diff if stale")
    args = parser.parse_args(argv)
    expected = outputs()
    if args.check:
        diffs = stale(expected)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs:
            print(f"\nGenerated files are stale; run `{COMMAND}` and commit.", file=sys.stderr)
            return 1
        return 0
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
