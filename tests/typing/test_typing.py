"""The typed API, judged by mypy itself with the project's configuration.

- ``pass_api.py`` is user code that must type-check without a single error; its
  ``assert_type`` calls pin what each call returns.
- ``fail/*.py`` are mistakes, one per file, that mypy must reject. Each offending line
  carries a marker comment, ``# E: CODE`` or ``# E: CODE "part of the message"``
  (or ``'part "of" the message'``, which may hold double quotes and commas; several
  separated by commas). mypy must report exactly the marked errors: each
  marked code on its line, and nothing anywhere else.
- ``regressions/*.py`` are correct user code that mypy once rejected because of a typing
  bug in peepsy's API (each file says which). They must type-check without errors.

mypy runs once, in-process, over all of these files together (sharing the project's
``.mypy_cache``), and its report is split per file. ``fail/`` is excluded from the
project's own mypy and ruff runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api as mypy_api

from peepsy import GroupStats, ProcessStats, RemoteError, Reply
from tests.typing import pass_api
from tests.typing.models import AddResult

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "typing"
PASS_FILE = HERE / "pass_api.py"
FAIL_FILES = sorted((HERE / "fail").glob("*.py"))
BUG_FILES = sorted((HERE / "regressions").glob("*.py"))

MARKER = re.compile(r"#\s*E:\s*(?P<items>.*)$")
MARKER_ITEM = re.compile(
    r"""^(?P<code>[a-z][a-z-]*)(?:\s+(?:"(?P<text>[^"]+)"|'(?P<quoted>[^']+)'))?$"""
)
#: One item of a marker: a code, then its text in double or single quotes (the single
#: quoted form may hold double quotes and commas, as mypy's messages do).
MARKER_SPLIT = re.compile(r"""\s*,\s*(?=(?:[^'"]|'[^']*'|"[^"]*")*$)""")
ERROR_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z-]+)\])?$"
)


@dataclass(frozen=True, order=True)
class Expected:
    line: int
    code: str
    text: str | None = None


@dataclass(frozen=True, order=True)
class Reported:
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}  [{self.code}]"


def expected_errors(path: Path) -> list[Expected]:
    """The ``# E:`` markers of a file, one entry per expected error."""
    found: list[Expected] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        marker = MARKER.search(line)
        if marker is None:
            continue
        for item in MARKER_SPLIT.split(marker.group("items").strip()):
            parsed = MARKER_ITEM.match(item)
            if parsed is None:
                raise ValueError(f"{path.name}:{number}: bad marker {item!r}")
            text = parsed.group("text") or parsed.group("quoted")
            found.append(Expected(number, parsed.group("code"), text))
    return found


def _label(path: Path) -> str:
    return path.relative_to(HERE).as_posix()


@pytest.fixture(scope="module")
def mypy_report() -> dict[Path, list[Reported]]:
    """Run mypy once over every file here; return its errors by resolved file path."""
    files = [PASS_FILE, *FAIL_FILES, *BUG_FILES]
    args = [
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--show-absolute-path",
        "--no-error-summary",
        "--no-pretty",
        "--hide-error-context",
        "--show-error-codes",
        *(str(f) for f in files),
    ]
    # The files import tests.typing.models, found from the repository root. mypy tunes
    # the garbage collector and the recursion limit for itself: put them back after.
    gc_threshold, recursion_limit = gc.get_threshold(), sys.getrecursionlimit()
    try:
        with contextlib.chdir(ROOT):
            stdout, stderr, status = mypy_api.run(args)
    finally:
        gc.set_threshold(*gc_threshold)
        sys.setrecursionlimit(recursion_limit)
    assert status in (0, 1), f"mypy did not finish (status {status}):\n{stderr}{stdout}"
    report: dict[Path, list[Reported]] = defaultdict(list)
    for line in stdout.splitlines():
        match = ERROR_LINE.match(line)
        if match is None:
            continue  # notes
        report[Path(match.group("path")).resolve()].append(
            Reported(int(match.group("line")), match.group("code") or "", match.group("message"))
        )
    return dict(report)


def test_every_fail_file_marks_its_errors() -> None:
    assert len(FAIL_FILES) >= 8
    unmarked = [_label(f) for f in FAIL_FILES if not expected_errors(f)]
    assert not unmarked, f"fail files without a '# E:' marker: {unmarked}"


def test_bug_files_carry_no_markers() -> None:
    marked = [_label(f) for f in BUG_FILES if expected_errors(f)]
    assert not marked, f"bug files must expect no errors: {marked}"


def test_pass_api_type_checks(mypy_report: dict[Path, list[Reported]]) -> None:
    errors = mypy_report.get(PASS_FILE, [])
    assert not errors, "\n".join(map(str, errors))


def test_no_errors_in_other_files(mypy_report: dict[Path, list[Reported]]) -> None:
    """The shared models and peepsy itself stay clean: every error belongs to a test file."""
    checked = {PASS_FILE, *FAIL_FILES, *BUG_FILES}
    elsewhere = {str(path): errors for path, errors in mypy_report.items() if path not in checked}
    assert not elsewhere


@pytest.mark.parametrize("path", FAIL_FILES, ids=_label)
def test_mistake_is_rejected(path: Path, mypy_report: dict[Path, list[Reported]]) -> None:
    expected = expected_errors(path)
    reported = sorted(mypy_report.get(path, []))
    missing = [
        e
        for e in expected
        if not any(
            r.line == e.line and r.code == e.code and (e.text is None or e.text in r.message)
            for r in reported
        )
    ]
    marked = {(e.line, e.code) for e in expected}
    unexpected = [r for r in reported if (r.line, r.code) not in marked]
    problems = [f"expected, not reported: line {e.line} [{e.code}]" for e in missing]
    problems += [f"reported, not marked: {r}" for r in unexpected]
    assert not problems, f"{_label(path)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", BUG_FILES, ids=_label)
def test_known_typing_bug_is_fixed(path: Path, mypy_report: dict[Path, list[Reported]]) -> None:
    errors = sorted(mypy_report.get(path, []))
    assert not errors, f"{_label(path)} should type-check:\n" + "\n".join(map(str, errors))


def test_marker_parsing(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'x = 1\ny: str = x  # E: assignment\nz = f(x)  # E: name-defined "f", misc\n',
        encoding="utf-8",
    )
    assert expected_errors(sample) == [
        Expected(2, "assignment"),
        Expected(3, "name-defined", "f"),
        Expected(3, "misc"),
    ]
    sample.write_text(
        """f(1)  # E: arg-type 'expected "Callable[[A], B]"', misc "x"\n""", encoding="utf-8"
    )
    assert expected_errors(sample) == [
        Expected(1, "arg-type", 'expected "Callable[[A], B]"'),
        Expected(1, "misc", "x"),
    ]
    sample.write_text("x = 1  # E: Not A Code\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad marker"):
        expected_errors(sample)


# --- what the annotations promise is what arrives at run time ------------------------


def test_pass_api_runs_against_in_memory_children() -> None:
    out = asyncio.run(asyncio.wait_for(pass_api.drive(pass_api.memory_launcher()), 30))
    assert out["sum"] == 3 + 12 + 6
    assert out["add"] == AddResult(sum=4)
    reply = out["reply"]
    assert isinstance(reply, Reply)
    assert (reply.status, reply.data, reply.target, reply.action) == (200, {"x": 1}, "w1", "echo")
    assert out["from_master"] == 5
    remote = out["remote"]
    assert isinstance(remote, RemoteError)
    assert (remote.status, remote.remote_code, remote.details) == (404, "E_NO_USER", {"id": 7})
    assert remote.payload is not None
    assert remote.payload.name == "HandlerError"
    assert isinstance(out["stats"], ProcessStats)
    assert isinstance(out["group"], GroupStats)
    assert out["group"].strategy == "least-busy"
    typed_reply = out["typed_reply"]
    assert isinstance(typed_reply, Reply)
    assert typed_reply.data == "number 1"
    # Master[AddParams, AddResult] holds an AddResult at run time, as mypy believes.
    assert out["typed_model"] == 3
    model_reply = out["typed_model_reply"]
    assert isinstance(model_reply, Reply)
    assert type(model_reply.data) is AddResult
    assert model_reply.data == AddResult(sum=7)
    events = out["events"]
    assert isinstance(events, list)
    assert [type(e).__name__ for e in events] == ["SpawnEvent"] * 3
