"""The suite's documentation agrees with the suite."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._matchers import MATCHERS
from peepsy.conformance._schemas import builtin_transcripts, step_ops
from peepsy.conformance._suite import load_all
from tests.conformance._cli import EXAMPLE_WORKER, PYTHON, ROOT, run_cli

README = ROOT / "conformance" / "README.md"
GUIDE = ROOT / "docs" / "conformance.md"
ROW = re.compile(
    r"^\| `([a-z0-9.-]+)` \| (core|profile|cancel) \| (MUST|SHOULD) \| ([A-Z0-9, -]+) \|", re.M
)


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_check_table_is_the_suite() -> None:
    table = {
        check: (level, severity, tuple(r.strip() for r in reqs.split(",")))
        for check, level, severity, reqs in ROW.findall(section(README.read_text(), "Checks"))
    }
    suite: dict[str, tuple[str, str, tuple[str, ...]]] = {
        t.check: (t.level, t.severity, t.requirement) for t in load_all([builtin_transcripts()])
    }
    suite |= {g.check: ("core", g.severity, g.requirement) for g in GLOBAL_CHECKS}
    assert table == suite


def test_every_profile_check_says_what_was_edited() -> None:
    text = section(README.read_text(), "Recording and generalizing")
    profile = {
        t.check for t in load_all([builtin_transcripts()]) if t.level in ("profile", "cancel")
    }
    for check in profile:
        assert f"| `{check}` |" in text, check


def test_every_step_and_matcher_is_documented() -> None:
    text = section(README.read_text(), "Transcripts") + section(
        README.read_text(), "Matchers and captures"
    )
    for op in step_ops():
        assert f'{{"{op}"' in text, op
    for matcher in MATCHERS:
        assert f'{{"{matcher}"' in text, matcher
    assert '"$exact": true' in text


@pytest.mark.parametrize("doc", [README, GUIDE, ROOT / "conformance/examples/my-actions/README.md"])
def test_relative_links_resolve(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
        assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_the_guides_recording_example_runs(tmp_path: Path) -> None:
    """docs/conformance.md's master with the tap records a transcript that passes."""
    [code] = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLE_WORKER, tmp_path / "examples" / "worker.py")
    (tmp_path / "record_add.py").write_text(code, encoding="utf-8")
    run = subprocess.run(
        [PYTHON, "record_add.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    transcript = tmp_path / "add.ndjson"
    assert '"action": "add"' in transcript.read_text(encoding="utf-8")
    replay = run_cli(
        "--no-builtin",
        "--transcripts",
        str(transcript),
        "--",
        PYTHON,
        "examples/worker.py",
        cwd=tmp_path,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "PASS  recorded.add" in replay.stdout
