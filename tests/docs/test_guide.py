"""docs/guide.md's examples run, so the guide cannot rot.

A fenced block may carry a marker, an HTML comment on the line just before it:

- ``<!-- run -->``: a ```python block that is executed. Each runs on its own, in a fresh
  namespace, in a temporary directory holding the guide's files (below).
- ``<!-- run: requires PROGRAM -->``: the same, skipped when PROGRAM is not on the PATH.
- ``<!-- file: NAME -->``: a block (any language) that is written to NAME in that
  directory, for the examples that start real processes (``worker.py``, ...).
- ``<!-- sample: NAME -->``: output of a real run, held true by tools/samples.py
  (tests/docs/test_samples.py).

Every ```python block, marked or not, must at least compile (top-level ``await`` is
allowed in fragments).
"""

from __future__ import annotations

import ast
import faulthandler
import gc
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

import pytest

from tests._paths import DOCS, ROOT

GUIDE = DOCS / "guide.md"
TEXT = GUIDE.read_text(encoding="utf-8")
BLOCK = re.compile(
    r"^(?:<!-- (?P<marker>[^\n]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
MARKER = re.compile(
    r"^(?:run(?:: requires (?P<requires>[\w.-]+))?|file: (?P<file>[\w./-]+)|sample: [\w.-]+)$"
)
#: An example that hangs fails the run (with every thread's traceback) after this long.
HANG_LIMIT_S = 120
#: peepsy's ProcessTransport never closes asyncio's subprocess transport (a known bug,
#: shown by tests/process/test_spawning.py::test_transport_closed_after_exit), so each
#: real child leaves one behind, to be collected with this ResourceWarning by whichever
#: test runs next. The examples collect their own, with that one warning ignored.
UNCLOSED_TRANSPORT = r"unclosed transport <_UnixSubprocessTransport"


@dataclass(frozen=True)
class Block:
    line: int  # of the first line of code
    lang: str
    code: str
    marker: str | None

    @property
    def parsed(self) -> re.Match[str] | None:
        return None if self.marker is None else MARKER.match(self.marker)

    @property
    def runs(self) -> bool:
        return self.parsed is not None and self.marker is not None and self.marker.startswith("run")

    @property
    def requires(self) -> str | None:
        return None if self.parsed is None else self.parsed.group("requires")

    @property
    def file(self) -> str | None:
        return None if self.parsed is None else self.parsed.group("file")


def _blocks() -> list[Block]:
    return [
        Block(
            line=TEXT.count("\n", 0, match.start("code")) + 1,
            lang=match.group("lang"),
            code=match.group("code"),
            marker=match.group("marker"),
        )
        for match in BLOCK.finditer(TEXT)
    ]


BLOCKS = _blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
RUNNABLE = [b for b in PYTHON if b.runs]
FILES = [b for b in BLOCKS if b.file is not None]


def _id(block: Block) -> str:
    return f"line{block.line}"


def _compile(block: Block) -> CodeType:
    # Pad with newlines so that tracebacks point at the guide's own line numbers.
    source = "\n" * (block.line - 1) + block.code
    code: CodeType = compile(source, str(GUIDE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return code


def test_the_guide_has_examples_that_run() -> None:
    assert len(RUNNABLE) >= 8
    assert {b.file for b in FILES} >= {"worker.py"}


def test_every_marker_is_known() -> None:
    unknown = [(b.line, b.marker) for b in BLOCKS if b.marker is not None and b.parsed is None]
    assert not unknown
    misplaced = [b.line for b in BLOCKS if b.runs and b.lang != "python"]
    assert not misplaced, "only python blocks can run"


def test_file_names_are_unique() -> None:
    names = [b.file for b in FILES]
    assert len(names) == len(set(names))


def test_the_first_worker_is_the_example_file() -> None:
    """The guide says its first worker is examples/worker.py: hold it to that."""
    [worker] = [b for b in FILES if b.file == "worker.py"]
    assert worker.code == (ROOT / "examples" / "worker.py").read_text(encoding="utf-8")


def test_internal_links_point_at_headings() -> None:
    def slug(heading: str) -> str:
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    headings = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", TEXT, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert links, "the guide links its own sections"
    assert links <= headings, sorted(links - headings)


@pytest.mark.parametrize("block", PYTHON, ids=_id)
def test_python_block_compiles(block: Block) -> None:
    _compile(block)


@pytest.mark.parametrize("block", RUNNABLE, ids=_id)
def test_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.requires is not None and shutil.which(block.requires) is None:
        pytest.skip(f"{block.requires} is not installed")
    for file in FILES:
        assert file.file is not None
        (tmp_path / file.file).write_text(file.code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = _compile(block)
    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True)
    try:
        exec(code, {"__name__": "guide_example"})
    finally:
        faulthandler.cancel_dump_traceback_later()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", UNCLOSED_TRANSPORT, ResourceWarning)
            gc.collect()
