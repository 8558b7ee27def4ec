"""The ssh benchmark runs both lanes against a loopback sshd and writes JSON of the
documented shape.

A quick run (hundredths of a second per measurement, one round) serves the test:
nothing here asserts a speed; the numbers come from a real run, recorded in
docs/scaling-out.md and docs/performance.md. Skipped only when the machine has no
OpenSSH server (CI installs one: .ci/run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import ssh
from benchmarks.lanes import ROOT
from tools import sshd as sshd_tool


@pytest.mark.skipif(not sshd_tool.available(), reason=f"no OpenSSH server at {sshd_tool.SSHD}")
def test_both_lanes_report_every_measure_and_their_ratio(tmp_path: Path) -> None:
    out = tmp_path / "ssh.json"
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ssh", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    [only] = result["rounds"]
    keys = {key for key, _, _ in ssh.MEASURES}
    for lane in (*ssh.LANES, "ratio"):
        assert set(only[lane]) >= keys, lane
        assert set(result["median"][lane]) == keys
        assert all(value > 0 for value in result["median"][lane].values())  # it ran
    assert result["meta"]["host"].endswith("@127.0.0.1")
    assert result["meta"]["ssh"].startswith("OpenSSH")
    for _, label, _ in ssh.MEASURES:
        assert label.format(big="10 KB") in done.stdout


def test_a_given_host_is_passed_on_as_sshhost_fields() -> None:
    args = argparse.Namespace(host="me@far", port=2222, identity_file="/k", known_hosts_file="/kh")
    assert ssh._given_host(args) == {
        "destination": "me@far",
        "port": 2222,
        "identity_file": "/k",
        "known_hosts_file": "/kh",
    }
    bare = argparse.Namespace(host="far", port=None, identity_file=None, known_hosts_file=None)
    assert ssh._given_host(bare) == {"destination": "far"}


def test_without_an_sshd_or_a_host_it_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ssh, "SSHD", Path("/nonexistent/sshd"))
    assert ssh.main(["--quick"]) == 2
    assert "openssh-server" in capsys.readouterr().err
