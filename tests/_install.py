"""Building and installing peepsy as a user gets it, for the tests that check the
installed package (tests/conformance/test_wheel.py, tests/plugin/test_installed.py):
one ``python -m build`` per session (the ``dist`` fixture in tests/conftest.py), and
fresh virtual environments that hold no peepsy."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests._paths import ROOT

PYTHON = sys.executable

#: A user's environment: nothing points at this checkout (a worktree run sets PYTHONPATH).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=300,
        check=False,
    )


def sh(*argv: str | Path, cwd: Path | None = None) -> str:
    done = run(*argv, cwd=cwd)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_dist(out: Path) -> tuple[Path, Path]:
    """``python -m build``, exactly as a release is made: the sdist, then the wheel built
    from the unpacked sdist, each in its own isolated build environment."""
    built = run(PYTHON, "-m", "build", "--outdir", out, ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Building wheel from sdist" in built.stderr, built.stderr  # build's progress
    [sdist] = out.glob("peepsy-*.tar.gz")
    [wheel] = out.glob("peepsy-*.whl")
    return sdist, wheel


def fresh_venv(where: Path) -> tuple[Path, Path]:
    """A virtual environment with no peepsy, whose dependencies (pydantic, jsonschema...)
    come from this one: the .pth adds only our site-packages directory, whose own .pth
    files (this checkout's editable install among them) are not read from there."""
    sh(PYTHON, "-m", "venv", "--without-pip", where)
    python = where / "bin" / "python"
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return python, site


def pip_install(python: Path, *what: str | Path) -> None:
    sh(PYTHON, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", *what)
