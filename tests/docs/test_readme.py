"""The README's code runs: its snippets are executed or are real files that run."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
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
    # The scaling-out example needs an ssh host: tests/docs/test_scaling_out.py runs it.
    inline = [b for b in BLOCKS if b not in examples and "host=HOST" not in b]
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


# A package index shows the README away from the repository, where a relative link
# leads nowhere: every link is absolute, and one into the repository names a path that
# exists on its main branch (blob for a file, tree for a folder).
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
REPO = PROJECT["urls"]["Source"]
LINKS = [
    *re.findall(r"\]\(\s*<?([^)\s>]+)", README),  # inline links and images
    *re.findall(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", README, re.MULTILINE),  # references
    *re.findall(r"""(?:href|src)\s*=\s*["']([^"']+)""", README),  # raw HTML
]


def test_readme_links_are_absolute() -> None:
    assert LINKS
    relative = [link for link in LINKS if not re.match(r"(https?|mailto):", link)]
    assert not relative, relative


def repo_path(url: str) -> Path:
    found = re.fullmatch(rf"{re.escape(REPO)}/(blob|tree)/main/([^#?]+)(#[^?]*)?", url)
    assert found, f"{url}: not {REPO}/blob/main/FILE nor {REPO}/tree/main/FOLDER"
    kind, path = found[1], ROOT / found[2]
    assert path.is_file() if kind == "blob" else path.is_dir(), url
    return path


def test_readme_repository_links_name_paths_that_exist() -> None:
    inside = [link for link in LINKS if link.startswith(REPO + "/")]
    assert len(inside) >= 10
    for link in inside:
        repo_path(link)


def test_the_package_urls_point_into_the_repository() -> None:
    urls = PROJECT["urls"]
    assert urls["Homepage"] == REPO == "https://github.com/peepsy/peepsy-python"
    assert repo_path(urls["Documentation"]) == ROOT / "docs"
    assert urls["Issues"] == f"{REPO}/issues"


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/peepsy/peepsy-python/blob/main/docs",  # a folder as a file
        "https://github.com/peepsy/peepsy-python/tree/main/README.md",  # a file as a folder
        "https://github.com/peepsy/peepsy-python/blob/main/docs/no-such-page.md",
        "https://github.com/peepsy/peepsy-python/blob/v1/README.md",  # not main
    ],
)
def test_a_broken_repository_link_is_caught(url: str) -> None:
    with pytest.raises(AssertionError):
        repo_path(url)


def test_the_guide_states_the_dependency_floors_that_pyproject_declares() -> None:
    # Users of an existing application read the floors in the guide's install section;
    # pyproject's comment says why each is what it is. Neither may drift from the other.
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    floors = {}
    for dep in PROJECT["dependencies"]:
        found = re.fullmatch(r"([a-z-]+)>=([0-9.]+)(?:,<\d+)?", dep)
        assert found, dep
        floors[found[1]] = found[2]
    assert set(floors) == {"pydantic", "msgspec", "orjson", "typing-extensions"}
    stated = " ".join(guide.split("## Installing", 1)[1].split("\n## ", 1)[0].split())
    for name, version in floors.items():
        assert f"{name} {version}" in stated, (name, version)
