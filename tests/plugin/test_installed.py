"""The plugin as a user gets it: from the installed wheel, loaded by its entry point (no
``-p``), in a folder of a third party's own, on a worker that does not import peepsy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests._install import fresh_venv, pip_install
from tests.plugin._support import MUTANT

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


def test_the_installed_wheel_registers_the_plugin(tmp_path: Path, dist: tuple[Path, Path]) -> None:
    _, wheel = dist  # python -m build's, shared with tests/conformance/test_wheel.py
    # pytest, pydantic and jsonschema come from this environment (tests/_install.py).
    python, site = fresh_venv(tmp_path / "venv")
    pip_install(python, wheel)

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
        str(site)
        in sh(
            python, "-c", "import peepsy.pytest_plugin as p; print(p.__file__)", cwd=project
        ).stdout
    )
