"""The README's code runs: its snippets are executed or are real files that run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
EXAMPLES = [
    "examples/worker.py",
    "examples/master.py",
    "examples/typed.py",
    "examples/typed_worker.py",
]


@pytest.mark.parametrize("path", EXAMPLES)
def test_readme_shows_the_example_file_verbatim(path: str) -> None:
    assert (ROOT / path).read_text(encoding="utf-8") in BLOCKS
    assert f"`{path}`" in README


def test_every_readme_python_block_is_an_example_or_runs() -> None:
    examples = {(ROOT / p).read_text(encoding="utf-8") for p in EXAMPLES}
    inline = [b for b in BLOCKS if b not in examples]
    assert len(inline) == 1  # the sans-IO snippet, executed below
    exec(compile(inline[0], "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("script", ["examples/master.py", "examples/typed.py"])
def test_quick_start_prints_what_the_readme_says(script: str) -> None:
    out = subprocess.run(
        [sys.executable, script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "3\n"


def test_first_lines_are_the_conformance_and_test_commands() -> None:
    first = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert first[0].startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && ")
    assert first[0].endswith(
        ".venv/bin/python -m peepsy.conformance -- "
        ".venv/bin/python conformance/workers/python_worker.py"
    )
    assert first[1] == ".venv/bin/python -m pytest"
