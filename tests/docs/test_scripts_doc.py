"""docs/scripts.md's examples run as the page says, and print what it shows.

Markers, HTML comments on the line before a fenced block (or alone on a line):

- ``<!-- file: NAME -->``: the block is written to NAME in a temporary directory.
- ``<!-- run -->``: the ```python block is run there as a script of its own.
- ``<!-- run: NAME -->``: the file NAME written earlier is run as a script.
- ``<!-- output -->``: the block is exactly what the last run printed.

Every other ```python block must at least compile (``await`` allowed).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._paths import DOCS, ROOT

PAGE = DOCS / "scripts.md"
TEXT = PAGE.read_text(encoding="utf-8")
ITEM = re.compile(
    r"^<!-- (?P<marker>[^\n]*?) -->\n(?!```)|"
    r"^(?:<!-- (?P<block_marker>[^\n]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
LIMIT_S = 120


def _script(path: Path, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path[1:]])}
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr}"
    return done.stdout


def test_examples_run_and_print_what_the_page_shows(tmp_path: Path) -> None:
    last: str | None = None
    checked = 0
    for number, match in enumerate(ITEM.finditer(TEXT)):
        marker = match.group("marker") or match.group("block_marker") or ""
        code = match.group("code")
        if marker.startswith("file: "):
            (tmp_path / marker[6:]).write_text(code, encoding="utf-8")
        elif marker == "run" and code is not None:
            script = tmp_path / f"_example_{number}.py"
            script.write_text(code, encoding="utf-8")
            last = _script(script, tmp_path)
        elif marker.startswith("run: "):
            last = _script(tmp_path / marker[5:], tmp_path)
        elif marker == "output":
            assert last is not None, "an output block with no run before it"
            assert last == code
            last = None
            checked += 1
    assert checked == 2


@pytest.mark.parametrize(
    "code",
    [m.group("code") for m in ITEM.finditer(TEXT) if m.group("lang") == "python"],
)
def test_python_blocks_compile(code: str) -> None:
    compile(code, str(PAGE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_the_readme_and_the_guide_link_here() -> None:
    assert "docs/scripts.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts.md" in (DOCS / "guide.md").read_text(encoding="utf-8")
