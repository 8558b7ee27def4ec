"""docs/conformance.md shows real output: each sample is run again here, and every line
it shows (``...`` marks what it leaves out) must appear in the real run's output, up to
what varies from run to run: timings and the other numbers, column widths and where the
package is installed. Regenerate a sample by running its command with COLUMNS=100."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conformance._cli import PYTHON, ROOT

GUIDE = ROOT / "docs" / "conformance.md"
#: Each sample's command, as the guide gives it (``python`` is this interpreter).
SAMPLES = {
    "reference": (["python", "conformance/workers/python_worker.py"], 0),
    "no-priority": (["python", "conformance/mutants/mutant.py", "--mutation", "no-priority"], 1),
    "dead": (
        [
            "python",
            "-c",
            'import sys; print("starting"); sys.exit("fatal: no config file at /etc/w.conf")',
        ],
        1,
    ),
}


def sample(name: str) -> list[str]:
    match = re.search(rf"<!-- sample: {name} -->\n```text\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"no sample {name!r} in {GUIDE.name}"
    return match[1].splitlines()


def normal(line: str) -> str:
    line = re.sub(r"\S*/conformance/transcripts/", ".../conformance/transcripts/", line)
    line = re.sub(r"\d+", "N", line)
    line = re.sub(r"-{2,}", "-", line)
    return " ".join(line.split())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_guides_sample_output_is_real(name: str) -> None:
    command, status = SAMPLES[name]
    env = dict(os.environ, COLUMNS="100")
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    run = subprocess.run(
        [PYTHON, "-m", "peepsy.conformance", "--", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == status, run.stdout + run.stderr
    real = {normal(line) for line in run.stdout.splitlines()}
    shown = [line for line in sample(name) if line.strip() != "..."]
    assert len(shown) > 3
    missing = [line for line in shown if normal(line) not in real]
    assert missing == [], run.stdout
    # The sample names its command: its worker line is this run's.
    assert f"worker: {' '.join(command)}" in shown
