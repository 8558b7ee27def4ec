"""The conformance suite passes against a worker reached over ssh: the suite takes any
command, here ``ssh ... HOST -- env PYTHONPATH=... python python_worker.py``, with the
connection shared among the suite's many workers as peepsy shares it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conformance._cli import PYTHON, WORKER, run_cli
from tests.process._support import ROOT
from tools.sshd import Sshd


def test_the_suite_passes_over_ssh(sshd: Sshd) -> None:
    # A socket path has about 100 bytes: not under pytest's long tmp_path.
    control = Path(tempfile.mkdtemp(prefix="peepsy-conf-", dir="/tmp"))
    sharing = [
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={control}/%C",
        "-o",
        "ControlPersist=5",
    ]
    ssh = sshd.ssh_argv()
    command = [*ssh[:-1], *sharing, ssh[-1], "--", "env", f"PYTHONPATH={ROOT}", PYTHON, str(WORKER)]
    try:
        done = run_cli("--quiet", "--", *command, timeout=180)
    finally:  # the shared connection ends with the test
        exit_master = [*ssh[:-1], *sharing, "-O", "exit", ssh[-1]]
        subprocess.run(exit_master, capture_output=True, timeout=30, check=False)
        shutil.rmtree(control, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "result: PASSED" in done.stdout
