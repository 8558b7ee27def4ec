"""The docs' sample outputs are what their commands print today (tools/samples.py).

Each registered sample is run again and compared with its block, up to the masks of
tools/samples.py (durations, the order checks finish in, pids, timestamps); a drift
fails with the diff, and ``python -m tools.samples NAME`` rewrites the block.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests._paths import ROOT
from tools import samples
from tools.samples import SAMPLES, Sample, SampleError, canonical, drift, run, shown

DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
MARKED = re.compile(r"<!-- sample: ([\w.-]+) -->")
TEXT_BLOCK = re.compile(r"(?:<!-- (?P<marker>[^\n]*?) -->\n)?```text\n(?P<first>[^\n]*)")
#: ```text blocks that are not a command's output, by their doc and first line.
NOT_OUTPUT = {
    ("docs/conformance.md", "# conformance-expected.txt"): "a file's content",
    ("docs/guide.md", "PeepsyError"): "the error tree, held by tests/test_errors_tree.py",
    ("README.md", "master -> child   {"): "the protocol, drawn",
    # Run in a real child and compared there (they need a failing worker and a caller).
    ("docs/guide.md", "handler for 'div' on 'w1'"): "held by tests/docs/test_guide_errors.py",
    ("docs/guide.md", 'peepsy._errors.RemoteTraceback: """'): (
        "held by tests/docs/test_guide_errors.py"
    ),
    # The outputs of scripts run from the page's own files, compared there.
    ("docs/scripts.md", "3"): "held by tests/docs/test_scripts_doc.py",
    ("docs/scripts.md", "144"): "held by tests/docs/test_scripts_doc.py",
    # pytest runs on the page's own files (<!-- output --> blocks), compared there.
    ("docs/testing.md", "peepsy worker: python my_worker.py"): (
        "held by tests/plugin/test_testing_doc.py"
    ),
    ("docs/testing.md", '{"type":"READY"'): "held by tests/plugin/test_testing_doc.py",
}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_the_sample_is_what_its_command_prints(sample: Sample) -> None:
    if not samples.available(sample):
        pytest.skip(f"{sample.requires} is not on the PATH")
    diff = drift(sample, run(sample))
    assert diff == [], (
        f"{sample.doc}'s sample {sample.name!r} drifted; `python -m tools.samples "
        f"{sample.name}` rewrites it:\n" + "\n".join(diff)
    )


def test_every_marked_block_is_registered_and_every_sample_has_its_block() -> None:
    marked = {
        (str(path.relative_to(ROOT)), name)
        for path in DOCS
        for name in MARKED.findall(path.read_text(encoding="utf-8"))
    }
    assert marked == {(s.doc, s.name) for s in SAMPLES}
    for sample in SAMPLES:
        samples.block(sample)


def test_every_text_block_is_a_sample_or_said_not_to_be_output() -> None:
    loose = []
    for path in DOCS:
        doc = str(path.relative_to(ROOT))
        for found in TEXT_BLOCK.finditer(path.read_text(encoding="utf-8")):
            marker, first = found["marker"] or "", found["first"]
            if marker.startswith("sample: "):
                continue
            if not any(doc == d and first.startswith(f) for d, f in NOT_OUTPUT):
                loose.append(f"{doc}: {first}")
    assert loose == [], "output not held by a sample (register it in tools/samples.py)"


# --- the mechanism itself -------------------------------------------------------------

OUTPUT = """\
[  2/3] PASS  a.one                                    A-1                   15 ms
[  1/3] FAIL  b.two                                    B-1                 1200 ms
[  3/3] PASS  c.three                                  C-1
x/conformance/transcripts/b.ndjson

worker: w
| pass | 2 |
| fail | 1 |
result: FAILED

"""


def test_shown_keeps_the_chosen_lines_and_marks_each_gap_once() -> None:
    sample = Sample("s", "d.md", progress=frozenset({"b.two"}), drop=(r"^\| (?!fail)",))
    assert shown(sample, OUTPUT).splitlines() == [
        "...",
        "[  1/3] FAIL  b.two                                    B-1                 1200 ms",
        "...",
        ".../conformance/transcripts/b.ndjson",
        "",
        "worker: w",
        "...",
        "| fail | 1 |",
        "result: FAILED",
    ]


def test_shown_keeps_everything_by_default_and_opens_with_the_prompt() -> None:
    text = shown(Sample("s", "d.md", prompt="$ run"), "\nout\n\n")
    assert text == "$ run\nout\n"


def test_canonical_masks_only_what_varies() -> None:
    real = shown(Sample("s", "d.md"), OUTPUT)
    reordered = real.replace("[  2/3] PASS  a.one", "[  1/3] PASS  a.one").replace(" 15 ms", "9 ms")
    lines = reordered.splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    assert canonical("\n".join(lines)) == canonical(real)
    # Totals, verdicts and counts are not masked.
    assert canonical(real.replace("/3]", "/4]", 1)) != canonical(real)
    assert canonical(real.replace("| fail | 1 |", "| fail | 2 |")) != canonical(real)
    assert canonical(real.replace("FAIL  b.two", "PASS  b.two")) != canonical(real)
    heartbeat = '{"type":"HEARTBEAT","pid":4242,"timestamp":1764310000000}'
    assert canonical(heartbeat) == canonical('{"type":"HEARTBEAT","pid":7,"timestamp":12}')


def test_a_command_that_ends_otherwise_is_an_error() -> None:
    sample = Sample("s", "d.md", ("python", "-c", "print('x'); raise SystemExit(3)"))
    with pytest.raises(SampleError, match="exit status 3, not 0"):
        run(sample)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "performance-run.json", tmp_path / "docs")
    monkeypatch.setattr(samples, "ROOT", tmp_path)
    monkeypatch.setattr(
        samples, "SAMPLES", (Sample("echo", "docs/x.md", ("python", "-c", "print(2)")),)
    )
    return tmp_path


def test_the_tool_rewrites_a_drifted_block_and_then_leaves_it(
    scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = scratch / "docs" / "x.md"
    doc.write_text("Out:\n\n<!-- sample: echo -->\n```text\n1\n```\n\nEnd.\n", encoding="utf-8")
    assert samples.main(["--check"]) == 1
    assert "echo: drifted" in capsys.readouterr().out
    assert "```text\n1\n```" in doc.read_text(encoding="utf-8")
    assert samples.main([]) == 0
    assert doc.read_text(encoding="utf-8") == (
        "Out:\n\n<!-- sample: echo -->\n```text\n2\n```\n\nEnd.\n"
    )
    assert samples.main(["--check", "echo"]) == 0
    assert "echo: up to date" in capsys.readouterr().out


def test_the_tool_refuses_an_unknown_sample_and_a_missing_block(scratch: Path) -> None:
    with pytest.raises(SystemExit):
        samples.main(["nope"])
    (scratch / "docs" / "x.md").write_text("no block\n", encoding="utf-8")
    with pytest.raises(SampleError, match="no block marked"):
        samples.main(["--check"])


def test_a_sample_needing_a_missing_program_is_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = Sample("n", "d.md", ("no-such-program-here",), requires="no-such-program-here")
    monkeypatch.setattr(samples, "SAMPLES", (absent,))
    assert samples.main([]) == 0
    assert "n: skipped, no-such-program-here is not on the PATH" in capsys.readouterr().out
