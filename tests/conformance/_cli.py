"""Running the suite's command line as a user would: a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
WORKER = ROOT / "conformance" / "workers" / "python_worker.py"
EXAMPLE_WORKER = ROOT / "examples" / "worker.py"
REPORT_SCHEMA = ROOT / "conformance" / "report.schema.json"
#: The reference worker's command, as a suite argument list.
REFERENCE = ["--", PYTHON, str(WORKER)]


def run_cli(
    *args: str, cwd: Path | None = None, python: str = PYTHON, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m peepsy.conformance ARGS``; its output as text."""
    return subprocess.run(
        [python, "-m", "peepsy.conformance", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def write_transcript(path: Path, *records: str) -> Path:
    path.write_text("".join(r + "\n" for r in records), encoding="utf-8")
    return path
