"""Every module of peepsy stays small enough to read in one sitting (issue 9).

A module over the limit is split along its seams rather than let grow: the test names
each one that is over, with its line count, so that a new one is seen when it comes.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests._paths import ROOT

MAX_LINES = 400
PACKAGE = ROOT / "peepsy"
#: Generated from the schema (tools/), not written or read by hand.
GENERATED = frozenset({"peepsy/protocol/_generated.py"})
#: Modules over the limit for now, each to leave this list when it is split: none.
ALLOWED_OVER: frozenset[str] = frozenset()


def modules() -> list[str]:
    """The package's Python files, relative to the repository. peepsy/_data is skipped:
    it links to conformance/ and schema/, whose example workers are data, not peepsy's
    code (and os.walk does not follow those links anyway)."""
    found = []
    for folder, subfolders, files in os.walk(PACKAGE):
        subfolders[:] = sorted(d for d in subfolders if d not in ("_data", "__pycache__"))
        found += [
            Path(folder, name).relative_to(ROOT).as_posix()
            for name in sorted(files)
            if name.endswith(".py")
        ]
    return found


def line_count(path: str) -> int:
    return len((ROOT / path).read_text(encoding="utf-8").splitlines())


def test_the_walk_finds_the_package() -> None:
    found = modules()
    assert "peepsy/conformance/__main__.py" in found
    assert set(found) >= GENERATED | ALLOWED_OVER


def test_no_module_is_over_the_limit() -> None:
    over = {
        path: count
        for path in modules()
        if path not in GENERATED | ALLOWED_OVER and (count := line_count(path)) > MAX_LINES
    }
    named = ", ".join(f"{path} ({count})" for path, count in sorted(over.items()))
    assert not over, f"modules over {MAX_LINES} lines (split them along their seams): {named}"
