"""The suite works from the installed wheel, in any directory: build the wheel, install
it into a fresh virtual environment, and run the command line from elsewhere."""

from __future__ import annotations

import json
import subprocess
import sysconfig
import zipfile
from pathlib import Path

from tests.conformance._cli import PYTHON, ROOT, WORKER, run_cli


def sh(*argv: str | Path, cwd: Path | None = None) -> str:
    run = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )
    assert run.returncode == 0, f"{argv}\n{run.stdout}\n{run.stderr}"
    return run.stdout


def test_the_installed_wheel_runs_the_suite_anywhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    sh(PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT)
    [wheel] = dist.glob("peepsy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "peepsy/conformance/_record.py",
        "peepsy/_data/conformance/transcript.schema.json",
        "peepsy/_data/conformance/report.schema.json",
        "peepsy/_data/conformance/transcripts/core/unicode.ndjson",
        "peepsy/_data/conformance/transcripts/profile/echo.ndjson",
        "peepsy/_data/schema/child-message.json",
    ):
        assert shipped in names, shipped

    venv = tmp_path / "venv"
    sh(PYTHON, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    sh(
        PYTHON,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        wheel,
    )
    # pydantic and jsonschema come from this environment, not peepsy: the .pth adds only
    # our site-packages directory (whose own .pth files, the editable install's among
    # them, are not read from there).
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = sh(python, "-c", "import peepsy; print(peepsy.__file__)", cwd=elsewhere)
    assert where.startswith(str(site)), where

    listing = run_cli("--list", cwd=elsewhere, python=str(python))
    assert listing.returncode == 0, listing.stderr
    ids = [line.split()[0] for line in listing.stdout.splitlines()]
    assert "profile.echo" in ids
    assert "frame.unicode" in ids
    assert "stream.stdout-purity" in ids

    report = elsewhere / "report.json"
    run = run_cli(
        "--only",
        "resp.*",
        "--json",
        str(report),
        "--",
        str(python),
        str(WORKER),
        cwd=elsewhere,
        python=str(python),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    checks = {c["check"]: c for c in json.loads(report.read_text(encoding="utf-8"))["checks"]}
    assert {c["verdict"] for c in checks.values()} == {"pass"}
    assert "resp.unknown-action" in checks
    assert checks["resp.unknown-action"]["source"].startswith(str(site))
