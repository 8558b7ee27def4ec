"""peepsy installs right however it is built: ``python -m build`` (the sdist, then the
wheel from the sdist, as a package index gets them), ``pip install`` of the sdist, and an
editable install all find the schemas and transcripts, and the suite runs from the
installed package in a folder that has nothing to do with this checkout."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from peepsy.conformance._schemas import data_dir, find_data_dir
from tests._install import fresh_venv, pip_install, sh
from tests.conformance._cli import ROOT

#: The folders whose every file the wheel carries inside the package, as peepsy/_data/.
DATA = ("schema", "conformance")


def source_files(folder: str) -> set[str]:
    """The files of a data folder, relative to the repository, as a build would see them."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_sdist_holds_the_sources_of_truth_and_no_symlink(dist: tuple[Path, Path]) -> None:
    sdist, _ = dist
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
    top = f"{sdist.name.removesuffix('.tar.gz')}/"
    names = {m.name.removeprefix(top) for m in members if m.isfile()}
    assert not [m.name for m in members if m.issym() or m.islnk()]
    for folder in DATA:
        missing = source_files(folder) - names
        assert not missing, missing
    assert {"pyproject.toml", "README.md", "LICENSE", "mkdocs.yml", "peepsy/py.typed"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_wheel_built_from_the_sdist_carries_the_data_and_no_junk(
    dist: tuple[Path, Path],
) -> None:
    _, wheel = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in DATA:
        missing = {f"peepsy/_data/{n}" for n in source_files(folder)} - names
        assert not missing, missing
    assert "peepsy/conformance/_record.py" in names
    assert "peepsy/py.typed" in names
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"peepsy", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("peepsy/tests/", "peepsy/_data/tests/"))]


def test_the_installed_wheel_runs_the_suite_anywhere(
    dist: tuple[Path, Path], tmp_path: Path
) -> None:
    _, wheel = dist
    python, site = fresh_venv(tmp_path / "venv")
    pip_install(python, "--no-index", wheel)
    cwd = elsewhere(tmp_path)
    where = sh(
        python, "-c", "from peepsy.conformance._schemas import data_dir; print(data_dir())", cwd=cwd
    )
    assert where.strip() == str(site / "peepsy" / "_data")

    listing = sh(python, "-m", "peepsy.conformance", "--list", cwd=cwd)
    ids = [line.split()[0] for line in listing.splitlines()]
    assert {"profile.echo", "frame.unicode", "stream.stdout-purity"} <= set(ids)

    # The example worker that ships in the wheel, run by the wheel's own suite.
    worker = site / "peepsy" / "_data" / "conformance" / "workers" / "python_worker.py"
    report = cwd / "report.json"
    # What is tested is the package, not the machine's speed: generous budgets and two
    # checks at a time keep a busy CI from failing a check (budgets bound waits only).
    sh(
        python, "-m", "peepsy.conformance", "--only", "resp.*", "--timeout-scale", "5",
        "-j", "2", "--json", report, "--", python, worker, cwd=cwd,
    )  # fmt: skip
    checks = {c["check"]: c for c in json.loads(report.read_text(encoding="utf-8"))["checks"]}
    assert {c["verdict"] for c in checks.values()} == {"pass"}
    assert "resp.unknown-action" in checks
    assert checks["resp.unknown-action"]["source"].startswith(str(site))


def test_pip_install_of_the_sdist_gives_a_working_package(
    dist: tuple[Path, Path], tmp_path: Path
) -> None:
    sdist, _ = dist
    python, site = fresh_venv(tmp_path / "venv")
    pip_install(python, sdist)
    cwd = elsewhere(tmp_path)
    where = sh(python, "-c", "import peepsy; print(peepsy.__file__)", cwd=cwd)
    assert where.startswith(str(site)), where
    assert "profile.echo" in sh(python, "-m", "peepsy.conformance", "--list", cwd=cwd)


def test_an_editable_install_reads_the_checkouts_own_folders(tmp_path: Path) -> None:
    python, _ = fresh_venv(tmp_path / "venv")
    pip_install(python, "--editable", ROOT)
    where = sh(
        python,
        "-c",
        "from peepsy.conformance._schemas import data_dir; print(data_dir())",
        cwd=elsewhere(tmp_path),
    )
    assert where.strip() == str(ROOT)


def test_a_checkout_reads_its_own_folders() -> None:
    assert data_dir() == ROOT


def test_the_wheel_layout_comes_first(tmp_path: Path) -> None:
    for root in (tmp_path / "pkg" / "_data", tmp_path):
        for folder in DATA:
            (root / folder).mkdir(parents=True)
    assert find_data_dir(tmp_path / "pkg") == tmp_path / "pkg" / "_data"


@pytest.mark.parametrize("present", [(), ("schema",), ("conformance",)])
def test_an_install_without_its_data_says_so(tmp_path: Path, present: tuple[str, ...]) -> None:
    for folder in present:
        (tmp_path / "pkg" / "_data" / folder).mkdir(parents=True)
        (tmp_path / folder).mkdir()
    with pytest.raises(FileNotFoundError, match="schemas and transcripts are missing"):
        find_data_dir(tmp_path / "pkg")


def test_the_installed_wheel_checks_a_master_anywhere(
    dist: tuple[Path, Path], tmp_path: Path
) -> None:
    """The master suite's cases, its stub child and the reference harness ship in the
    wheel: a run from an unrelated folder finds them all there."""
    _, wheel = dist
    python, site = fresh_venv(tmp_path / "venv")
    pip_install(python, "--no-index", wheel)
    cwd = elsewhere(tmp_path)
    listing = sh(python, "-m", "peepsy.conformance", "master", "--list", cwd=cwd)
    assert {"m.req.timeout-enforced", "m.frame.json"} <= {
        line.split()[0] for line in listing.splitlines() if line.strip()
    }
    harness = site / "peepsy" / "_data" / "conformance" / "masters" / "peepsy_harness.py"
    report = cwd / "report.json"
    sh(
        python, "-m", "peepsy.conformance", "master", "--check", "m.req.*",
        "--timeout-scale", "5", "-j", "2", "--json", report, "--", python, harness, cwd=cwd,
    )  # fmt: skip
    checks = {c["check"]: c for c in json.loads(report.read_text(encoding="utf-8"))["checks"]}
    assert checks["m.req.timeout-enforced"]["verdict"] == "pass"
    assert checks["m.req.timeout-enforced"]["source"].startswith(str(site))
