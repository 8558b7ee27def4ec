"""The plugin as a user gets it: from the installed wheel, loaded by its entry point (no
``-p``), in a folder of a third party's own, on a worker that does not import peepsy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.plugin._support import MUTANT, ROOT

PYTHON = sys.executable


def sh(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_installed_wheel_registers_the_plugin(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = sh(PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT)
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("peepsy-*.whl")
    venv = tmp_path / "venv"
    assert sh(PYTHON, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = sh(
        PYTHON, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel
    )
    assert installed.returncode == 0, installed.stderr
    # pytest, pydantic and jsonschema come from this environment (see test_wheel.py).
    site = sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    (Path(site.stdout.strip()) / "deps.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )

    project = tmp_path / "their-project"
    project.mkdir()
    shutil.copy(MUTANT, project / "my_worker.py")
    (project / "pytest.ini").write_text(
        f"[pytest]\npeepsy_worker = {python} my_worker.py\n", encoding="utf-8"
    )
    run = sh(
        python, "-m", "pytest", "-k", "resp.unknown-action", "-p", "no:cacheprovider", cwd=project
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout, run.stdout
    assert (
        str(site.stdout.strip())
        in sh(
            python, "-c", "import peepsy.pytest_plugin as p; print(p.__file__)", cwd=project
        ).stdout
    )
