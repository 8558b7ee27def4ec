"""docs/testing.md's examples run as shown, so that the page cannot rot.

Markers, an HTML comment on the line before a fenced block:

- ``<!-- file: NAME -->``: the block is written to NAME in pytester's folder;
- ``<!-- run: pytest -->``: the block's one line is a pytest command, run there (in
  order: the files written before it exist); it must pass;
- ``<!-- output -->``: every line must match the last run's output, in order (``*``
  is a wildcard); ``<!-- output: NAME -->``: NAME must hold exactly the block.

``python my_worker.py`` becomes this interpreter, which has this peepsy.
"""

from __future__ import annotations

import re
import shlex
import sys

import pytest

from tests.plugin._support import ROOT, plugin_args

pytest_plugins = ["pytester"]

PAGE = ROOT / "docs" / "testing.md"
BLOCK = re.compile(
    r"^(?:<!-- (?P<marker>[^\n]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


def here(text: str) -> str:
    return text.replace("python my_worker.py", f"{sys.executable} my_worker.py")


def test_the_examples_of_the_testing_page_run_as_shown(pytester: pytest.Pytester) -> None:
    result: pytest.RunResult | None = None
    ran = 0
    for block in BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
        marker, code = block["marker"] or "", block["code"]
        if marker.startswith("file: "):
            (pytester.path / marker[6:]).write_text(here(code), encoding="utf-8")
        elif marker == "run: pytest":
            (line,) = code.strip().splitlines()
            argv = shlex.split(here(line))
            assert argv[0] == "pytest"
            result = pytester.runpytest(*plugin_args(), *argv[1:])
            assert result.ret == 0, result.stdout.str()
            ran += 1
        elif marker == "output":
            assert result is not None
            result.stdout.fnmatch_lines(here(code).splitlines())
        elif marker.startswith("output: "):
            stored = (pytester.path / marker[8:]).read_text(encoding="utf-8")
            assert stored == code
    assert ran == 4


def test_every_python_block_compiles() -> None:
    text = PAGE.read_text(encoding="utf-8")
    python = [b["code"] for b in BLOCK.finditer(text) if b["lang"] == "python"]
    assert len(python) >= 4
    for code in python:
        compile(code, str(PAGE), "exec")


def test_the_conformance_guide_points_here() -> None:
    guide = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert "(testing.md)" in guide
